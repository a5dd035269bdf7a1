"""Stitching the transcripts of a recording's pieces into one, and rendering it in any format.

Every piece is transcribed as ``verbose_json`` with segment and word timestamps. Times are moved
by the piece's offset. Neighbouring pieces share ``overlap`` seconds around a seam (a cut placed in
a pause); a word is kept from the piece whose seams enclose the word's middle, so the overlap is
neither duplicated nor lost. A segment that crosses a seam keeps only its own side's words (its
text and times are rebuilt from them); without word timestamps, it goes wholly to the side its
middle is on.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.transcription.answers import NotATranscript, check_timed_parts
from airflow_provider_kubeai_speech.transcription.formats import to_srt, to_vtt

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_provider_kubeai_speech.transcription.splitter import Piece

_EPSILON = 1e-6


class MalformedPieceError(KubeAISpeechError):
    """A piece's result is not a usable ``verbose_json`` transcript (from the endpoint or the cache)."""


def _middle(item: Mapping[str, Any]) -> float:
    return (float(item["start"]) + float(item["end"])) / 2


def _shifted(item: Mapping[str, Any], offset: float) -> dict[str, Any]:
    moved = dict(item)
    moved["start"] = round(float(item["start"]) + offset, 3)
    moved["end"] = round(float(item["end"]) + offset, 3)
    return moved


def _piece_parts(
    piece: Piece, result: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """This piece's segments and words on the recording's clock, only those inside its seams."""
    low, high = piece.bounds()

    def inside(time: float) -> bool:
        return low - _EPSILON <= time < high - _EPSILON

    words = [_shifted(w, piece.offset) for w in result.get("words") or []]
    segments: list[dict[str, Any]] = []
    for raw in result.get("segments") or []:
        segment = _shifted(raw, piece.offset)
        if segment["start"] >= low - _EPSILON and segment["end"] <= high + _EPSILON:
            if inside(_middle(segment)):
                segments.append(segment)
            continue
        own_words = [
            w for w in words if segment["start"] - _EPSILON <= _middle(w) <= segment["end"] + _EPSILON
        ]
        if not own_words:
            if inside(_middle(segment)):
                segments.append(segment)
            continue
        kept = [w for w in own_words if inside(_middle(w))]
        if kept:
            segment["start"], segment["end"] = kept[0]["start"], kept[-1]["end"]
            segment["text"] = "".join(_word_text(w, i) for i, w in enumerate(kept))
            segment.pop("tokens", None)
            segments.append(segment)
    return segments, [w for w in words if inside(_middle(w))]


def _word_text(word: Mapping[str, Any], index: int) -> str:
    text = str(word.get("word", ""))
    return text if text.startswith(" ") or index == 0 else " " + text


def stitch(pieces: Sequence[tuple[Piece, Mapping[str, Any]]], duration: float) -> dict[str, Any]:
    """One ``verbose_json`` transcript from the pieces' ``verbose_json`` results, in order.

    :raises MalformedPieceError: a result without text, segments and words of finite times.
    """
    for piece, result in pieces:
        try:
            check_timed_parts(result)
        except NotATranscript as err:
            raise MalformedPieceError(f"piece {piece.index + 1}: {err}") from None
    segments: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    languages: Counter[str] = Counter()
    for piece, result in sorted(pieces, key=lambda pair: pair[0].index):
        piece_segments, piece_words = _piece_parts(piece, result)
        segments.extend(piece_segments)
        words.extend(piece_words)
        if result.get("language"):
            languages[str(result["language"])] += 1
    segments.sort(key=lambda s: (s["start"], s["end"]))
    words.sort(key=lambda w: (w["start"], w["end"]))
    for number, segment in enumerate(segments, start=1):
        segment["id"] = number
        segment["seek"] = round(segment["start"] * 100)
    return {
        "task": "transcribe",
        "language": languages.most_common(1)[0][0] if languages else None,
        "duration": round(duration, 3),
        "text": join_text(segments),
        "segments": segments,
        "words": words,
    }


def join_text(segments: Iterable[Mapping[str, Any]]) -> str:
    return " ".join(text for s in segments if (text := str(s.get("text", "")).strip()))


def render(
    transcript: Mapping[str, Any], response_format: str, granularities: Iterable[str] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """The stitched transcript as KubeAI would have answered for the whole recording:
    the body text, and the parsed JSON for ``json`` and ``verbose_json``."""
    if response_format == "json":
        data: dict[str, Any] = {"text": transcript["text"]}
        return json.dumps(data, ensure_ascii=False), data
    if response_format == "verbose_json":
        data = dict(transcript)
        if "word" not in set(granularities or ("segment",)):
            data["words"] = None
        return json.dumps(data, ensure_ascii=False), data
    if response_format == "text":
        return str(transcript["text"]), None
    if response_format == "srt":
        return to_srt(transcript["segments"]), None
    if response_format == "vtt":
        return to_vtt(transcript["segments"]), None
    raise ValueError(f"unknown response_format {response_format!r}")
