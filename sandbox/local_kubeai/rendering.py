"""Transcripts rendered the way KubeAI's speech server renders them.

KubeAI's ``FasterWhisper`` engine runs faster-whisper-server 0.5.0 (now *speaches*). Its
``text_utils`` and ``api_models`` decide what a client gets back, and the sandbox copies their
behaviour here, independently of the provider's own code, so that the provider's formatting is
tested against the server's rather than against itself:

- ``text`` and ``json``: the segments' texts joined with nothing between them (each already starts
  with a space), then stripped;
- ``srt``: ``<n>\\n<start> --> <end>\\n<text>\\n\\n`` per segment, the text as the model gave it
  (with its leading space), times truncated (not rounded) to the millisecond;
- ``vtt``: ``WEBVTT\\n\\n`` then ``<start> --> <end>\\n<text>\\n\\n`` per segment, the first cue
  starting at 00:00:00.000 whatever its segment's start;
- ``verbose_json``: ``words`` only when word timestamps were asked for, each segment with its own
  ``words`` (or null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain",
    "srt": "text/plain",
    "vtt": "text/vtt",
}
RESPONSE_FORMATS: tuple[str, ...] = tuple(CONTENT_TYPES)


def _clock(seconds: float, separator: str) -> str:
    hours = seconds // 3600
    minutes = (seconds % 3600) // 60
    secs = seconds % 60
    millis = (seconds * 1000) % 1000
    return f"{int(hours):02d}:{int(minutes):02d}:{int(secs):02d}{separator}{int(millis):03d}"


def segments_text(segments: Iterable[Mapping[str, Any]]) -> str:
    """The transcript's text as the server joins it."""
    return "".join(str(s["text"]) for s in segments).strip()


def srt(segments: Sequence[Mapping[str, Any]]) -> str:
    """SubRip, one cue per segment."""
    return "".join(
        f"{i + 1}\n{_clock(s['start'], ',')} --> {_clock(s['end'], ',')}\n{s['text']}\n\n"
        for i, s in enumerate(segments)
    )


def vtt(segments: Sequence[Mapping[str, Any]]) -> str:
    """WebVTT; the server starts the first cue at zero."""
    cues = []
    for i, s in enumerate(segments):
        start = s["start"] if i > 0 else 0.0
        cues.append(f"{_clock(start, '.')} --> {_clock(s['end'], '.')}\n{s['text']}\n\n")
    return "WEBVTT\n\n" + "".join(cues) if cues else ""


def verbose_json(
    *,
    language: str,
    duration: float,
    segments: Sequence[Mapping[str, Any]],
    words: Sequence[Mapping[str, Any]] | None,
) -> dict[str, Any]:
    """The ``verbose_json`` body; ``words`` is None unless word timestamps were on."""
    return {
        "task": "transcribe",
        "language": language,
        "duration": duration,
        "text": segments_text(segments),
        "words": list(words) if words is not None else None,
        "segments": list(segments),
    }
