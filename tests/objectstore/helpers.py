"""Helpers shared by the object-storage tests: a batch through the sandbox, and the manifest of a
remote output folder as a reader sees it."""

from __future__ import annotations

import logging
from typing import Any

import requests

from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.transcription.batch import BatchTranscriber
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from tests.batch_setup import make_batch

FAST = RetrySettings(max_attempts=3, backoff_factor=0.01, backoff_max=0.02, backoff_jitter=0.0)
LOG = logging.getLogger("objectstore-tests")


def hook() -> KubeAISpeechHook:
    return KubeAISpeechHook(retry=FAST)


def batch(
    output: str | None,
    transcribe: Any = None,
    *,
    model: str = "whisper",
    run_id: str | None = None,
    **options: Any,
) -> BatchTranscriber:
    """A batch to ``output`` (a URI or a local folder) through the sandbox's ``whisper``."""
    options.setdefault("response_format", "text")
    return make_batch(
        transcribe or hook().transcribe,
        model,
        None if output is None else OutputFolder(output),
        LOG,
        run_id=run_id,
        **options,
    )


def manifest_records(folder: str) -> list[dict[str, Any]]:
    """Every manifest record under ``folder`` (all parts, in order), through the provider's reader."""
    from airflow_provider_kubeai_speech.transcription.manifest import iter_manifest_records

    return list(iter_manifest_records(folder))


def last_status(folder: str) -> dict[str, str]:
    """Input -> the status of its last manifest record, through the provider's public reader."""
    from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_state

    return {uri: str(record["status"]) for uri, record in read_manifest_state(folder).last.items()}


def sandbox_stats(sandbox: Any) -> dict[str, Any]:
    """What the sandbox received, as its HTTP API reports it."""
    result: dict[str, Any] = requests.get(f"{sandbox.kubeai_url}/sandbox/stats", timeout=5).json()
    return result
