"""What counts as a transcript in each response format (pure: no I/O).

A gateway's login page, a JSON error object or a proxy's placeholder must never be written as a
transcript, or a rerun with ``skip_existing`` would keep it for good. So a body counts only when
it has the shape of the format asked for:

- ``json``: a JSON object whose ``text`` is a string;
- ``verbose_json``: that, plus ``segments`` a list (and ``words`` a list or null) of objects whose
  ``start`` and ``end`` are finite numbers with ``start <= end``;
- ``srt``: SubRip cues (a timing line ``00:00:01,000 --> 00:00:02,500`` in every block); empty
  when nothing was said;
- ``vtt``: ``WEBVTT`` first, then WebVTT cues (or NOTE/STYLE/REGION blocks);
- ``text``: anything but an HTML document or a JSON object.

A Content-Type of ``text/html`` is refused for every format, ``application/json`` for the text
formats.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SRT_TIMING = re.compile(r"^\s*\d+:\d{2}:\d{2}[,.]\d{1,3}\s+-->\s+\d+:\d{2}:\d{2}[,.]\d{1,3}(\s.*)?$")
_VTT_TIMING = re.compile(r"^\s*(\d+:)?\d{2}:\d{2}\.\d{3}\s+-->\s+(\d+:)?\d{2}:\d{2}\.\d{3}(\s.*)?$")
_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")
_HTML = re.compile(r"^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.IGNORECASE)


class NotATranscript(ValueError):
    """The body is not a transcript in the format asked for; the message says why."""


def parse_transcript(response_format: str, content: str, content_type: str = "") -> Any:
    """Check ``content`` (the decoded body) against ``response_format``.

    :return: the parsed object for ``json`` and ``verbose_json``, else None.
    :raises NotATranscript: with the reason.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if response_format in ("json", "verbose_json"):
        if media_type == "text/html":
            raise NotATranscript(f"expected JSON ({response_format}) but got text/html")
        try:
            data = json.loads(content)
        except ValueError as err:
            raise NotATranscript(
                f"expected JSON ({response_format}) but got {media_type or 'no content type'}"
            ) from err
        if response_format == "json":
            check_json(data)
        else:
            check_verbose_json(data)
        return data
    if media_type == "text/html" or _HTML.match(content):
        raise NotATranscript(f"an HTML page ({media_type or 'no content type'}), not a transcript")
    if media_type == "application/json" or media_type.endswith("+json") or _json_object(content):
        raise NotATranscript(f"asked for {response_format} but got JSON")
    if response_format == "srt":
        _check_cues(content, _SRT_TIMING, "srt")
    elif response_format == "vtt":
        if not content.lstrip("\ufeff").startswith("WEBVTT"):
            raise NotATranscript("a vtt answer must start with 'WEBVTT'")
        _check_cues(content, _VTT_TIMING, "vtt", header=True)
    return None


def check_json(data: Any) -> None:
    """A ``json`` transcript: an object with a ``text`` string."""
    if not isinstance(data, dict):
        raise NotATranscript(f"the JSON answer is a {type(data).__name__}, not an object")
    if not isinstance(data.get("text"), str):
        raise NotATranscript("the JSON answer has no 'text' string")


def check_verbose_json(data: Any) -> None:
    """A ``verbose_json`` transcript: ``text``, and ``segments``/``words`` with sane times."""
    check_json(data)
    check_timed_parts(data)


def check_timed_parts(data: Any) -> None:
    """``segments`` (and ``words`` when present) of a ``verbose_json`` object: lists of objects
    with finite ``start <= end`` and string text (what stitching pieces relies on)."""
    if not isinstance(data, dict):
        raise NotATranscript(f"the JSON answer is a {type(data).__name__}, not an object")
    if not isinstance(data.get("segments"), list):
        raise NotATranscript("verbose_json without a segments list")
    _check_timed(data["segments"], "segments")
    words = data.get("words")
    if words is not None:
        if not isinstance(words, list):
            raise NotATranscript(f"verbose_json 'words' is a {type(words).__name__}, not a list")
        _check_timed(words, "words")
    duration = data.get("duration")
    if duration is not None and not _finite(duration):
        raise NotATranscript(f"verbose_json 'duration' is {duration!r}, not a finite number")


def _check_timed(items: list[Any], name: str) -> None:
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise NotATranscript(f"verbose_json {name}[{index}] is a {type(item).__name__}, not an object")
        start: Any = item.get("start")
        end: Any = item.get("end")
        if not (_finite(start) and _finite(end)):
            raise NotATranscript(
                f"verbose_json {name}[{index}] has start={start!r}, end={end!r}: not finite numbers"
            )
        if start > end:
            raise NotATranscript(f"verbose_json {name}[{index}] ends before it starts ({start} > {end})")
        text = item.get("text" if name == "segments" else "word", "")
        if not isinstance(text, str):
            raise NotATranscript(f"verbose_json {name}[{index}] has a {type(text).__name__} as its text")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_object(content: str) -> bool:
    stripped = content.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    try:
        return isinstance(json.loads(stripped), dict)
    except ValueError:
        return False


def _check_cues(content: str, timing: re.Pattern[str], name: str, *, header: bool = False) -> None:
    blocks = [b for b in re.split(r"\n\s*\n", content.replace("\r\n", "\n").strip()) if b.strip()]
    for number, block in enumerate(blocks[1:] if header else blocks, start=1):
        lines = block.split("\n")
        if header and lines[0].startswith(_VTT_BLOCKS):
            continue
        if not any(timing.match(line) for line in lines[:2]):
            first = lines[0][:60]
            raise NotATranscript(f"{name} block {number} has no cue timing line (it starts {first!r})")
