"""Speech-like recordings for the long-recording tests, made once per session in every format
(a pytest plugin: the ``recordings`` fixture), and an SRT reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_kubeai.recordings import FORMATS, write_recording

SECONDS = 40.0


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 40-second recording (the same speech) as WAV, FLAC, MP3, M4A/AAC and OGG/Opus."""
    folder = tmp_path_factory.mktemp("recordings")
    return {ext: write_recording(folder / f"meeting.{ext}", SECONDS, seed=7) for ext in FORMATS}


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each SubRip or WebVTT cue."""
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        timing = next((i for i, line in enumerate(lines) if " --> " in line), None)
        if timing is None:
            continue  # the WEBVTT header
        start, end = (_seconds(stamp) for stamp in lines[timing].split(" --> "))
        cues.append((start, end, " ".join(lines[timing + 1 :]).strip()))
    return cues


def same_cues(got: str, want: str, tolerance: float = 0.002) -> None:
    """The same cues, with times equal to the millisecond rounding of two clocks."""
    a, b = srt_cues(got), srt_cues(want)
    assert [text for *_, text in a] == [text for *_, text in b]
    assert all(
        abs(s1 - s2) <= tolerance and abs(e1 - e2) <= tolerance
        for (s1, e1, _), (s2, e2, _) in zip(a, b, strict=True)
    )


def _seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest.replace(",", "."))
