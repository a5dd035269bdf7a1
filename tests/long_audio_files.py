"""Speech-like recordings for the long-recording tests, made once per session in every format
(a pytest plugin: the ``recordings`` fixture), and an SRT reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_kubeai_speech.sandbox.recordings import FORMATS, write_recording

SECONDS = 40.0


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 40-second recording (the same speech) as WAV, FLAC, MP3, M4A/AAC and OGG/Opus."""
    folder = tmp_path_factory.mktemp("recordings")
    return {ext: write_recording(folder / f"meeting.{ext}", SECONDS, seed=7) for ext in FORMATS}


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each SubRip cue."""
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        start, end = (_seconds(stamp) for stamp in lines[1].split(" --> "))
        cues.append((start, end, " ".join(lines[2:])))
    return cues


def _seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))
