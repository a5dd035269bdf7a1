"""Stitching the transcripts of a recording's pieces into one, and rendering it in any format.

Pieces are transcribed as ``verbose_json``, with word timestamps only when the caller wants
words (Whisper's word alignment stretches the last word of a 30 s window and decoding resumes
after it, skipping speech; see docs/performance.rst). Times are moved by the piece's offset.

Neighbouring pieces share ``overlap`` seconds around a seam, and both transcribe that stretch.
Edge times are unreliable (a piece that starts inside a word times it stretched; a window cut
short may repeat itself or hear "Thank you."), so the overlap is aligned by its *words*: the
two pieces' words near the seam are matched (case and punctuation ignored), and the transcript
switches from the left piece to the right one inside the matched run nearest the seam. Words
past that point in the left piece, and before it in the right one, are what only a piece's edge
heard, and are dropped. When the pieces share no words there (a seam in a long pause), a word
belongs to the piece whose seams enclose its middle, and words heard only within the outer
edge of a piece are dropped. Without word timestamps, a segment's words are timed by spreading
the segment over its characters (only to find them; segment times stay the model's). A segment
keeps the words kept from it: its text and, when cut, its times are rebuilt from them.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.exceptions import MalformedPieceError as MalformedPieceError
from airflow_provider_kubeai_speech.transcription.answers import NotATranscript, check_timed_parts
from airflow_provider_kubeai_speech.transcription.formats import to_srt, to_vtt

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_provider_kubeai_speech.transcription.splitter import Piece

_EPSILON = 1e-6
SAMPLE_RATE = 16_000
#: How far from a seam the two pieces' words are compared.
ALIGN_SECONDS = 4.0
#: A word heard only this close to the outer edge of a piece is not trusted (no alignment).
EDGE_SECONDS = 0.3
#: A zero-length word this close to a piece's edge is a window looping on its last words.
LOOP_EDGE_SECONDS = 1.5
#: Two pieces' copies of a word are the same word when their times are this close (segment-spread
#: times are rough).
SAME_TIME_SECONDS = 1.5
_NON_WORD = re.compile(r"[^\w']+")


@dataclass
class _Word:
    """One word of a piece, on the recording's clock."""

    text: str
    start: float
    end: float
    segment: int
    key: str
    probability: float | None = None

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def _middle(item: Mapping[str, Any]) -> float:
    return (float(item["start"]) + float(item["end"])) / 2


def _shifted(item: Mapping[str, Any], offset: float) -> dict[str, Any]:
    moved = dict(item)
    moved["start"] = round(float(item["start"]) + offset, 3)
    moved["end"] = round(float(item["end"]) + offset, 3)
    return moved


def _within(segment: dict[str, Any], piece: Piece) -> dict[str, Any]:
    """A segment clamped to the audio its piece holds (a window cut short may be timed past it)."""
    first, last = piece.start / SAMPLE_RATE, piece.end / SAMPLE_RATE
    segment["start"] = round(min(max(segment["start"], first), last), 3)
    segment["end"] = round(min(max(segment["end"], segment["start"]), last), 3)
    return segment


def _key(text: str) -> str:
    return _NON_WORD.sub("", text.casefold())


def _piece_words(result: Mapping[str, Any], segments: list[dict[str, Any]], piece: Piece) -> list[_Word]:
    """The piece's words in order: its own timed words, or each segment's text spread over it."""
    offset = piece.offset
    first_edge = offset + LOOP_EDGE_SECONDS
    last_edge = piece.end / SAMPLE_RATE - LOOP_EDGE_SECONDS
    words: list[_Word] = []
    for number, (raw_segment, segment) in enumerate(
        zip(result.get("segments") or [], segments, strict=False)
    ):
        timed = raw_segment.get("words") if isinstance(raw_segment, dict) else None
        if timed is None and result.get("words"):
            start, end = float(raw_segment["start"]), float(raw_segment["end"])
            timed = [w for w in result["words"] if start - 0.5 <= _middle(w) <= end + 0.5]
        if timed:
            for raw in timed:
                start, end = float(raw["start"]) + offset, float(raw["end"]) + offset
                if end - start <= _EPSILON and not first_edge < start < last_edge:
                    continue  # a zero-length word near an edge: one the aligner could not place (a repeat)
                text = str(raw.get("word", ""))
                words.append(_Word(text.strip(), start, end, number, _key(text), raw.get("probability")))
            continue
        tokens = str(segment.get("text", "")).split()
        start, end = float(segment["start"]), float(segment["end"])
        weights = [len(t) + 1 for t in tokens]
        total, done = sum(weights), 0
        for token, weight in zip(tokens, weights, strict=True):
            begin = start + (end - start) * done / total
            done += weight
            words.append(_Word(token, begin, start + (end - start) * done / total, number, _key(token)))
    words.sort(key=lambda w: (w.start, w.end))
    return words


def _splice(left: list[_Word], right: list[_Word], seam: float) -> tuple[int, int] | None:
    """Where to leave ``left`` and join ``right``: (last index kept of left, first of right).

    Only words within :data:`ALIGN_SECONDS` of the seam are compared. A match is a run of at
    least two words that both pieces heard at about the same time (one word, or the same words
    far apart, is a coincidence); the longest such run wins, and the switch happens at its pair
    nearest the seam.
    """
    tail = [n for n, w in enumerate(left) if w.end > seam - ALIGN_SECONDS and w.key]
    head = [n for n, w in enumerate(right) if w.start < seam + ALIGN_SECONDS and w.key]
    if not tail or not head:
        return None
    matcher = difflib.SequenceMatcher(
        None, [left[n].key for n in tail], [right[n].key for n in head], autojunk=False
    )
    best: tuple[int, float, int, int] | None = None
    for block in matcher.get_matching_blocks():
        pairs = [
            (tail[block.a + k], head[block.b + k])
            for k in range(block.size)
            if abs(left[tail[block.a + k]].middle - right[head[block.b + k]].middle) <= SAME_TIME_SECONDS
        ]
        if len(pairs) < 2:
            continue
        a, b = min(pairs, key=lambda ab: abs((left[ab[0]].middle + right[ab[1]].middle) / 2 - seam))
        distance = abs((left[a].middle + right[b].middle) / 2 - seam)
        if best is None or (len(pairs), -distance) > (best[0], -best[1]):
            best = (len(pairs), distance, a, b)
    if best is None:
        return None
    return best[2], best[3] + 1


def _rebuilt(segments: list[dict[str, Any]], words: list[_Word], kept: list[_Word]) -> list[dict[str, Any]]:
    """Each segment with at least one kept word, its text (and, when cut, times) from those words."""
    out: list[dict[str, Any]] = []
    by_segment: dict[int, list[_Word]] = {}
    for word in kept:
        by_segment.setdefault(word.segment, []).append(word)
    heard = Counter(w.segment for w in words)
    for number, segment in enumerate(segments):
        own = by_segment.get(number)
        if not own:
            continue
        rebuilt = dict(segment)
        if len(own) < heard[number] or len(own) != len(str(segment.get("text", "")).split()):
            rebuilt["text"] = " " + " ".join(w.text for w in own)
            rebuilt["start"] = round(max(float(segment["start"]), own[0].start), 3)
            rebuilt["end"] = round(min(float(segment["end"]), own[-1].end), 3)
            rebuilt.pop("tokens", None)
        rebuilt.pop("words", None)
        out.append(rebuilt)
    return out


def stitch(pieces: Sequence[tuple[Piece, Mapping[str, Any]]], duration: float) -> dict[str, Any]:
    """One ``verbose_json`` transcript from the pieces' ``verbose_json`` results, in order.

    :raises MalformedPieceError: a result without text, segments and words of finite times.
    """
    for piece, result in pieces:
        try:
            check_timed_parts(result)
        except NotATranscript as err:
            raise MalformedPieceError(f"piece {piece.index + 1}: {err}") from err
    ordered = sorted(pieces, key=lambda pair: pair[0].index)
    languages: Counter[str] = Counter()
    parts: list[tuple[Piece, list[dict[str, Any]], list[_Word], bool]] = []
    for piece, result in ordered:
        moved = [_within(_shifted(s, piece.offset), piece) for s in result.get("segments") or []]
        timed = bool(result.get("words"))
        parts.append((piece, moved, _piece_words(result, moved, piece), timed))
        if result.get("language"):
            languages[str(result["language"])] += 1
    # keep[i] = (first, end) indices of piece i's words that are kept
    keep = [[0, len(words)] for _, _, words, _ in parts]
    for i in range(len(parts) - 1):
        (left_piece, _, left, _), (right_piece, _, right, _) = parts[i], parts[i + 1]
        seam = left_piece.bounds()[1]
        spliced = _splice(left, right, seam)
        if spliced is not None:
            keep[i][1], keep[i + 1][0] = spliced[0] + 1, spliced[1]
            continue
        left_edge, right_edge = left_piece.end / SAMPLE_RATE, right_piece.start / SAMPLE_RATE
        keep[i][1] = sum(1 for w in left if w.middle < seam - _EPSILON and w.start < left_edge - EDGE_SECONDS)
        keep[i + 1][0] = next(
            (
                n
                for n, w in enumerate(right)
                if w.middle >= seam - _EPSILON and w.end > right_edge + EDGE_SECONDS
            ),
            len(right),
        )
    segments: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    for (_, piece_segments, piece_words, timed), (first, end) in zip(parts, keep, strict=True):
        kept = piece_words[first:end] if first < end else []
        segments.extend(_rebuilt(piece_segments, piece_words, kept))
        if timed:
            words.extend(
                {
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "word": " " + w.text,
                    "probability": w.probability,
                }
                for w in kept
            )
    for previous, segment in itertools.pairwise(segments):
        # cues must not overlap: at a seam the two pieces' edge times disagree by a little
        if segment["start"] < previous["end"]:
            if segment["start"] >= previous["start"]:
                previous["end"] = segment["start"]
            else:
                segment["start"] = previous["end"]
                segment["end"] = max(segment["end"], segment["start"])
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
