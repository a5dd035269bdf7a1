"""The one request object: checked when made, its fingerprint the manifest's of earlier versions."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.speech import TranscriptionRequest
from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber
from airflow_provider_kubeai_speech.transcription.sources import AudioInput


def fingerprint(request: TranscriptionRequest | str, item: AudioInput) -> str:
    batch = BatchTranscriber(lambda *a, **k: None, request, BatchOptions(), None, logging.getLogger("t"))
    return batch.settings(item)


def test_fingerprints_are_those_earlier_versions_recorded() -> None:
    """Digests computed with the code before the request object (main at 1e18837): manifests
    written then still decide skips now."""
    request = TranscriptionRequest(
        "whisper",
        response_format="srt",
        language="en",
        prompt="KubeAI",
        temperature=0,
        timestamp_granularities=["segment"],
        extra_fields={"hotwords": "KubeAI", "vad_filter": True},
        chunk_seconds=300,
        chunk_overlap_seconds=2,
    )
    assert fingerprint(request, AudioInput("a.wav", "a.wav", size=1000, version="v1")) == ("2e568f86561c311b")
    assert fingerprint("whisper", AudioInput("a.wav", "a.wav", size=10)) == "ca230552db433f14"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"response_format": "docx"}, "response_format='docx' is not one of json, text, srt"),
        ({"timestamp_granularities": ["letter"]}, "timestamp_granularities has 'letter'"),
        ({"temperature": 2}, "temperature=2 must be at least 0 and at most 1"),
        ({"temperature": "hot"}, "temperature='hot' is not a number"),
        ({"chunk_seconds": 5}, "chunk_seconds=5 is too short"),
        ({"chunk_seconds": 100, "chunk_overlap_seconds": 30}, "chunk_overlap_seconds=30 must be between 0"),
        ({"extra_fields": ["hotwords"]}, "extra_fields=['hotwords'] is not a mapping"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(KubeAISpeechError, match="Fix") as raised:
        TranscriptionRequest("whisper", **settings)
    assert message in str(raised.value)


def test_the_request_is_frozen_and_yields_the_form() -> None:
    request = TranscriptionRequest("whisper", language="en", temperature=0, extra_fields={"vad_filter": True})
    with pytest.raises(AttributeError):
        request.language = "de"  # type: ignore[misc]
    assert request.form_fields() == [
        ("model", "whisper"),
        ("response_format", "json"),
        ("language", "en"),
        ("temperature", "0.0"),
        ("vad_filter", "true"),
    ]
    piece = request.but(response_format="verbose_json", timestamp_granularities=["segment"])
    assert piece.timestamp_granularities == ("segment",) and request.response_format == "json"
