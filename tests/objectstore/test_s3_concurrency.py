"""Two tasks (two processes) writing one remote output folder at the same time: no manifest record
lost, every transcript present, and the manifest's reader gives each input's last state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.audio_files import make_wavs
from tests.objectstore.conftest import S3
from tests.objectstore.helpers import last_status, manifest_records

ROOT = Path(__file__).resolve().parents[2]
PER_TASK = 150
pytestmark = pytest.mark.slow

TASK = r"""
import json, sys, time
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.objectstore.helpers import batch
audio, output, run_id = sys.argv[1:4]
started = time.time()
summary = batch(output, max_concurrency=4, run_id=run_id).run(resolve_inputs(audio))
print(json.dumps({"started": started, "ended": time.time(), **summary.to_xcom()}))
"""


def test_two_tasks_write_one_remote_folder_without_losing_a_record(
    s3: S3, make_whisper: Any, tmp_path: Path
) -> None:
    sandbox = make_whisper(latency_per_request=0.005, replica_concurrency=4)
    s3.create_bucket("calls", "transcripts")
    for task in ("a", "b"):
        for wav in make_wavs(tmp_path / task, PER_TASK, seconds=0.1, prefix=task):
            s3.put(f"s3://calls/{task}/{wav.name}", wav.read_bytes())
    out = "s3://transcripts/shared"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", TASK, f"s3://calls/{task}/*.wav", out, "manual__2026-11-24"],
            cwd=ROOT,
            env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in ("a", "b")
    ]
    results = []
    try:
        for child in children:
            stdout, stderr = child.communicate(timeout=240)
            assert child.returncode == 0, stderr[-3000:]
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    first, second = results
    assert first["started"] < second["ended"] and second["started"] < first["ended"], (
        "the tasks did not overlap"
    )
    assert [r["succeeded"] for r in results] == [PER_TASK, PER_TASK]

    transcripts = [key for key in s3.keys(out) if key.endswith(".txt")]
    assert len(transcripts) == 2 * PER_TASK
    records = manifest_records(out)
    expected = {f"s3://calls/{task}/{task}-{i:04d}.wav" for task in ("a", "b") for i in range(PER_TASK)}
    assert sorted(r["input"] for r in records) == sorted(expected)  # each exactly once, none lost
    assert last_status(out) == dict.fromkeys(expected, "ok")
    assert sandbox.stats.snapshot()["outcomes"] == {"200": 2 * PER_TASK}
