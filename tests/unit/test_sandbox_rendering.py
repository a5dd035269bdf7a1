"""The sandbox answers as faster-whisper-server 0.5.0 does: its form mapping and its rendering."""

from __future__ import annotations

import pytest

from local_kubeai import rendering
from local_kubeai.engines import DecodeOptions
from local_kubeai.openai_api import _Unprocessable, decode_options
from local_kubeai.wer import errors, normalise

SEGMENTS = [
    {"start": 0.42, "end": 2.0009, "text": " Hello there."},
    {"start": 3661.5, "end": 3663.25, "text": " Goodbye."},
]


def test_defaults_are_the_servers() -> None:
    assert decode_options({}) == DecodeOptions(
        language=None, prompt=None, temperature=0.0, word_timestamps=False, vad_filter=False, hotwords=None
    )


@pytest.mark.parametrize(
    ("granularities", "words"),
    [("segment", False), ("word", True), ("segment,word", True), ("word,segment", True), ("", False)],
)
def test_word_timestamps_exactly_when_asked(granularities: str, words: bool) -> None:
    assert decode_options({"timestamp_granularities": granularities}).word_timestamps is words


def test_every_field_is_mapped() -> None:
    options = decode_options(
        {
            "language": "en",
            "prompt": "KubeAI",
            "temperature": "0.4",
            "vad_filter": "true",
            "hotwords": "Airflow",
        }
    )
    assert options == DecodeOptions("en", "KubeAI", 0.4, False, True, "Airflow")


@pytest.mark.parametrize(
    "fields", [{"vad_filter": "maybe"}, {"temperature": "warm"}, {"timestamp_granularities": "letter"}]
)
def test_values_the_server_refuses(fields: dict[str, str]) -> None:
    with pytest.raises(_Unprocessable):
        decode_options(fields)


def test_rendering_like_the_server() -> None:
    assert rendering.segments_text(SEGMENTS) == "Hello there. Goodbye."
    assert rendering.srt(SEGMENTS) == (
        "1\n00:00:00,420 --> 00:00:02,000\n Hello there.\n\n2\n01:01:01,500 --> 01:01:03,250\n Goodbye.\n\n"
    )  # milliseconds truncated, the segment's text as the model gave it
    assert rendering.vtt(SEGMENTS).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n Hello there.\n\n")
    assert rendering.vtt([]) == ""
    body = rendering.verbose_json(language="en", duration=3.0, segments=SEGMENTS, words=None)
    assert body["words"] is None and body["text"] == "Hello there. Goodbye." and body["task"] == "transcribe"


def test_word_error_rate_ignores_case_and_punctuation() -> None:
    assert normalise("Thank you, Sarah. Long-waiting?") == ["thank", "you", "sarah", "long", "waiting"]
    counted = errors("one two three four", "One, two... four five six")
    assert counted.substitutions + counted.deletions + counted.insertions == 3 and counted.rate == 0.75


def test_the_sandbox_does_not_answer_with_the_providers_formatting() -> None:
    import ast
    from pathlib import Path

    import local_kubeai as sandbox

    folder = Path(sandbox.__file__).parent
    for name in ("openai_api.py", "engines.py", "rendering.py", "wer.py"):
        tree = ast.parse((folder / name).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m and ".transcription" in m}, name  # an independent oracle
