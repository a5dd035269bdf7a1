"""One way for tests to build a batch from keywords: the transcription settings become the
:class:`TranscriptionRequest`, the rest the :class:`BatchOptions` (as the operator splits them)."""

from __future__ import annotations

import dataclasses
from typing import Any

from airflow_provider_kubeai_speech.speech import TranscriptionRequest
from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber

_BATCH_KNOBS = {f.name for f in dataclasses.fields(BatchOptions)}


def make_batch(
    transcribe: Any, model: str, output: Any, log: Any, *, run_id: str | None = None, **settings: Any
) -> BatchTranscriber:
    """``chunking=ChunkSettings(...)`` is accepted for the chunk and overlap seconds."""
    knobs = {key: settings.pop(key) for key in list(settings) if key in _BATCH_KNOBS}
    chunking = settings.pop("chunking", None)
    if chunking is not None:
        settings["chunk_seconds"] = chunking.chunk_seconds
        settings["chunk_overlap_seconds"] = chunking.overlap_seconds
    request = TranscriptionRequest(model, **settings)
    return BatchTranscriber(transcribe, request, BatchOptions(**knobs), output, log, run_id=run_id)
