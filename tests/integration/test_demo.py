"""`make demo` runs the example DAG against the sandbox and prints real transcripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_prints_real_transcripts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_kubeai_speech.sandbox.demo", "--work-dir", str(tmp_path / "demo")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Summary: 5/5 transcribed" in out
    assert "heard: the delivery was scheduled for next monday morning" in out
    mean_wer = float(out.split("mean WER ")[1].split("%")[0])
    assert mean_wer < 20
