"""Transcript formats KubeAI's speech endpoint returns, and the file extension for each.

Used to stitch pieces of long recordings into one transcript (the sandbox, an independent
oracle, has its own rendering: ``local_kubeai.rendering``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_kubeai_speech.speech import RESPONSE_FORMATS as RESPONSE_FORMATS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
EXTENSIONS: dict[str, str] = {
    "json": "json",
    "verbose_json": "json",
    "text": "txt",
    "srt": "srt",
    "vtt": "vtt",
}
CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def timestamp(seconds: float, *, separator: str) -> str:
    """``HH:MM:SS<sep>mmm``: ``,`` for SRT, ``.`` for WebVTT."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(segments: Iterable[Mapping[str, Any]]) -> str:
    """SubRip cues, numbered from 1."""
    cues = []
    for index, seg in enumerate(segments, start=1):
        start = timestamp(seg["start"], separator=",")
        end = timestamp(seg["end"], separator=",")
        cues.append(f"{index}\n{start} --> {end}\n{str(seg['text']).strip()}\n")
    return "\n".join(cues)


def to_vtt(segments: Iterable[Mapping[str, Any]]) -> str:
    """WebVTT with a header; like KubeAI's server, the first cue starts at zero."""
    cues = [
        f"{timestamp(seg['start'] if i else 0.0, separator='.')} --> {timestamp(seg['end'], separator='.')}\n{str(seg['text']).strip()}\n"
        for i, seg in enumerate(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)
