"""`make demo` runs the example DAG against the sandbox on real Whisper and prints its transcripts."""

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
        [sys.executable, "scripts/demo.py", "--work-dir", str(tmp_path / "demo")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Summary: 5/5 transcribed" in out
    assert "faster-whisper engine" in out
    heard = [line.split("heard: ", 1)[1] for line in out.splitlines() if "heard: " in line]
    assert len(heard) == 5 and all(text[0].isupper() and text.rstrip()[-1] in ".?!" for text in heard)
    assert any("delivery was scheduled for next Monday morning" in text for text in heard)
    mean_wer = float(out.split("mean WER ")[1].split("%")[0])
    assert mean_wer < 5
