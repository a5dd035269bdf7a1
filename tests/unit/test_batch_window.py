"""The batch submits files as earlier ones finish, a bounded window ahead, and ramps up from a few
requests to ``max_concurrency`` at its first answer (issue 19: 100k futures at once, and a
thundering herd against a Model scaled to zero)."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.speech import TranscriptionResult
from airflow_provider_kubeai_speech.transcription import batch as batch_module
from airflow_provider_kubeai_speech.transcription.batch import BatchSummary
from airflow_provider_kubeai_speech.transcription.manifest import FileResult
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.audio_files import make_wavs
from tests.batch_setup import make_batch

LOG = logging.getLogger("test")


class Recorder:
    """An endpoint that records how many requests were in flight, before and after the first answer."""

    def __init__(self, first_delay: float) -> None:
        self.first_delay = first_delay
        self.in_flight = 0
        self.peak_before_first = 0
        self.peak = 0
        self.answered = False
        self._lock = threading.Lock()

    def __call__(self, model: str, audio: Any, **request: Any) -> TranscriptionResult:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if not self.answered:
                self.peak_before_first = max(self.peak_before_first, self.in_flight)
            slow = not self.answered
        time.sleep(self.first_delay if slow else 0.02)  # a Model starting from zero, then warm
        with self._lock:
            self.in_flight -= 1
            self.answered = True
        return TranscriptionResult("ok", "text")


def test_ramp_then_full_concurrency_within_a_bounded_window(tmp_path: Path, monkeypatch: Any) -> None:
    make_wavs(tmp_path / "in", 300, seconds=0.01)
    queued: list[int] = []
    submit = ThreadPoolExecutor.submit

    def counting_submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self._thread_name_prefix == "kubeai-transcribe":
            queued.append(self._work_queue.qsize())
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", counting_submit)
    endpoint = Recorder(first_delay=0.3)
    batch = make_batch(
        endpoint, "whisper", OutputFolder(tmp_path / "out"), LOG, max_concurrency=8, progress_interval=3600
    )
    summary = batch.run(resolve_inputs(str(tmp_path / "in")))
    assert summary.count("ok") == 300
    assert endpoint.peak_before_first <= batch_module.RAMP_START == 2
    assert endpoint.peak == 8  # opened up after the first answer
    assert len(queued) == 300 and max(queued) <= 2 * 8  # never the whole batch queued at once


@pytest.mark.parametrize("concurrency", [1, 3])
def test_small_concurrency_is_not_exceeded_by_the_ramp(tmp_path: Path, concurrency: int) -> None:
    make_wavs(tmp_path / "in", 20, seconds=0.01)
    endpoint = Recorder(first_delay=0.05)
    batch = make_batch(
        endpoint,
        "whisper",
        OutputFolder(tmp_path / "out"),
        LOG,
        max_concurrency=concurrency,
        progress_interval=3600,
    )
    assert batch.run(resolve_inputs(str(tmp_path / "in"))).count("ok") == 20
    assert endpoint.peak <= concurrency


def test_summary_counts_everything_keeps_failures_and_a_bounded_sample() -> None:
    summary = BatchSummary()
    for i in range(batch_module.RESULTS_KEPT + 5000):
        summary.add(FileResult(f"/calls/{i}.wav", f"/out/{i}.json", "ok"))
    for i in range(30):
        summary.add(FileResult(f"/calls/bad-{i}.wav" + "x" * 5000, None, "failed", error="e" * 100_000))
    assert (
        summary.total == batch_module.RESULTS_KEPT + 5030
        and summary.count("ok") == batch_module.RESULTS_KEPT + 5000
    )
    assert len(summary.results) == batch_module.RESULTS_KEPT + 30 and len(summary.failures) == 30
    xcom = summary.to_xcom()
    assert (xcom["total"], xcom["failed"], len(xcom["failures"])) == (
        batch_module.RESULTS_KEPT + 5030,
        30,
        20,
    )
    assert len(json.dumps(xcom)) < 64 * 1024


def test_a_shard_with_no_files_succeeds_with_zero(tmp_path: Path) -> None:
    batch = make_batch(Recorder(first_delay=0), "whisper", OutputFolder(tmp_path / "out"), LOG)
    xcom = batch.run([]).to_xcom()
    assert (xcom["total"], xcom["succeeded"], xcom["failed"], xcom["failures"]) == (0, 0, 0, [])
