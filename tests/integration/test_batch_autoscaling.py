"""A batch against a Model at zero under the sandbox's autoscaler: a few requests until the first
answer (no herd at scale-from-zero), then enough in flight to pass targetRequests per replica, so
KubeAI scales it up to maxReplicas (issue 19, point 6)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.speech import TranscriptionRequest, TranscriptionResult
from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.audio_files import make_wavs
from tests.integration.test_autoscaling import FAST, NS, idle_at_zero

LOG = logging.getLogger("test")


class Counting:
    """The hook's endpoint, counting requests in flight before and after the first answer."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint
        self.stopping = endpoint.stopping
        self.in_flight = self.peak = self.before_first = 0
        self.answered = False
        self._lock = threading.Lock()

    def send(
        self, audio: Any, request: TranscriptionRequest, *, filename: str | None = None
    ) -> TranscriptionResult:
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if not self.answered:
                self.before_first = max(self.before_first, self.in_flight)
        try:
            return self.endpoint.send(audio, request, filename=filename)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.answered = True


def test_a_batch_drives_the_autoscaler_up_from_zero_without_a_herd(
    make_kubeai_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3, latency_per_request=0.05, **FAST)
    idle_at_zero(sandbox)  # min 0, max 2, targetRequests 4, scaled to zero by the autoscaler
    _, since = sandbox.store.watch_from(0)
    make_wavs(tmp_path / "in", 400, seconds=0.1)
    hook = KubeAISpeechHook(pool_size=8)
    endpoint = Counting(hook.endpoint)
    batch = BatchTranscriber(
        endpoint,
        TranscriptionRequest("nightly", response_format="text"),
        BatchOptions(max_concurrency=8, progress_interval=3600),  # 2 replicas x targetRequests 4
        OutputFolder(tmp_path / "out"),
        LOG,
    )
    try:
        summary = batch.run(resolve_inputs(str(tmp_path / "in")))
    finally:
        hook.close()
    assert summary.count("ok") == 400
    assert endpoint.before_first <= 2  # the cold Model got two requests, not eight
    assert endpoint.peak == 8
    events, _ = sandbox.store.watch_from(since)
    replicas = [
        obj["spec"].get("replicas") or 0
        for _, _, obj in events
        if obj["metadata"]["name"] == "nightly" and obj["metadata"].get("namespace", NS) == NS
    ]
    assert max(replicas) == 2, replicas  # 8 in flight / targetRequests 4: the autoscaler went to max
