"""Value types both the hooks and the batch engine use, so neither has to import the other.

- :class:`TranscriptionRequest`: the transcription settings, declared and checked once, carried
  unchanged from the operator to the multipart form on the wire.
- :class:`TranscriptionResult`: one transcription as KubeAI answered it.
- :data:`AudioSource`: what can be uploaded.
- :class:`SpeechEndpoint`: what the batch engine and the long-recording orchestrator need of
  the endpoint (the hook's ``SpeechEndpointClient`` is one).

Pure Python: nothing here imports Airflow, the hooks or :mod:`.transcription`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError

if TYPE_CHECKING:
    import threading

RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "srt", "verbose_json", "vtt")
TIMESTAMP_GRANULARITIES: tuple[str, ...] = ("segment", "word")
MIN_CHUNK_SECONDS = 10.0
DEFAULT_OVERLAP_SECONDS = 2.0
SECONDS = "a number of seconds"

#: Something that can be uploaded: a local path, a URI, bytes, or a callable opening a fresh
#: binary stream (ObjectStoragePath objects and other ``.open()``-able paths are accepted too).
AudioSource = str | os.PathLike[str] | bytes | Callable[[], BinaryIO] | Any


def check_chunking(chunk_seconds: Any, overlap_seconds: Any) -> tuple[float, float] | None:
    """``(chunk, overlap)`` in seconds, or None for no splitting; refuses bad values naming the fix."""
    if chunk_seconds is None:
        return None
    chunk = _number(
        "chunk_seconds",
        chunk_seconds,
        "chunk_seconds=300 (5 minutes), or None to send recordings whole",
        SECONDS,
    )
    overlap = _number("chunk_overlap_seconds", overlap_seconds, "chunk_overlap_seconds=2", SECONDS)
    if not math.isfinite(chunk) or chunk < MIN_CHUNK_SECONDS:
        raise KubeAISpeechError(
            f"chunk_seconds={chunk_seconds!r} is too short: pieces under {MIN_CHUNK_SECONDS:g} s cost more in "
            "requests than they gain (Whisper reads 30 s windows). Fix: chunk_seconds=300 (5 minutes), or None "
            "to send recordings whole."
        )
    if not math.isfinite(overlap) or overlap < 0 or overlap > chunk / 4:
        raise KubeAISpeechError(
            f"chunk_overlap_seconds={overlap_seconds!r} must be between 0 and a quarter of chunk_seconds "
            f"({chunk / 4:g}). Fix: chunk_overlap_seconds=2."
        )
    return chunk, overlap


def _number(name: str, value: Any, fix: str, unit: str = "a number") -> float:
    if isinstance(value, bool):
        raise KubeAISpeechError(f"{name}={value!r} is not {unit}. Fix: {fix}.")
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise KubeAISpeechError(f"{name}={value!r} is not {unit}. Fix: {fix}.") from err
    if not math.isfinite(number):
        raise KubeAISpeechError(f"{name}={value!r} is not a finite number. Fix: {fix}.")
    return number


def check_response_format(response_format: Any) -> str:
    if response_format not in RESPONSE_FORMATS:
        raise KubeAISpeechError(
            f"response_format={response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}. "
            "Fix: e.g. response_format='srt'."
        )
    return str(response_format)


def check_granularities(granularities: Iterable[str] | None) -> tuple[str, ...] | None:
    if not granularities:
        return None
    if isinstance(granularities, str):
        granularities = [granularities]
    for granularity in granularities:
        if granularity not in TIMESTAMP_GRANULARITIES:
            raise KubeAISpeechError(
                f"timestamp_granularities has {granularity!r}. Fix: use 'segment' and/or 'word'."
            )
    return tuple(granularities)


def check_temperature(temperature: Any) -> float | None:
    """``temperature`` as a float from 0 to 1 (or None); refuses anything else naming the fix."""
    if temperature is None:
        return None
    number = _number("temperature", temperature, "e.g. temperature=0")
    if not 0 <= number <= 1:
        raise KubeAISpeechError(
            f"temperature={temperature!r} must be at least 0 and at most 1. Fix: a sampling "
            "temperature from 0 to 1, e.g. temperature=0, or None."
        )
    return number


@dataclass(frozen=True)
class TranscriptionRequest:
    """The settings of one transcription, checked when made (before anything is sent).

    :param model: the Model name (``name_adapter`` selects an adapter).
    :param response_format: ``json``, ``text``, ``srt``, ``verbose_json`` or ``vtt``.
    :param language: language of the speech (e.g. ``"en"``), or None to detect.
    :param prompt: text to guide decoding.
    :param temperature: sampling temperature (0 to 1).
    :param timestamp_granularities: ``segment`` and/or ``word`` (with ``verbose_json``).
    :param extra_fields: more multipart fields (e.g. ``{"hotwords": "KubeAI", "vad_filter": True}``).
    :param chunk_seconds: split recordings longer than this; None sends them whole.
    :param chunk_overlap_seconds: audio neighbouring pieces share around each cut.
    """

    model: str
    response_format: str = "json"
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    timestamp_granularities: Iterable[str] | None = None
    extra_fields: Mapping[str, Any] | None = field(default=None, hash=False)
    chunk_seconds: float | None = None
    chunk_overlap_seconds: float = DEFAULT_OVERLAP_SECONDS

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise KubeAISpeechError(f"model={self.model!r} is not a Model name. Fix: e.g. model='whisper'.")
        check_response_format(self.response_format)
        object.__setattr__(self, "timestamp_granularities", check_granularities(self.timestamp_granularities))
        object.__setattr__(self, "temperature", check_temperature(self.temperature))
        if self.extra_fields is not None:
            if not isinstance(self.extra_fields, Mapping):
                raise KubeAISpeechError(
                    f"extra_fields={self.extra_fields!r} is not a mapping. Fix: e.g. extra_fields={{'hotwords': 'KubeAI'}}."
                )
            object.__setattr__(self, "extra_fields", MappingProxyType(dict(self.extra_fields)) or None)
        chunking = check_chunking(self.chunk_seconds, self.chunk_overlap_seconds)
        if chunking is not None:
            object.__setattr__(self, "chunk_seconds", chunking[0])
            object.__setattr__(self, "chunk_overlap_seconds", chunking[1])

    def but(self, **changes: Any) -> TranscriptionRequest:
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def keywords(self) -> dict[str, Any]:
        """The settings as the keywords of ``hook.transcribe`` (chunking left out)."""
        return {
            "response_format": self.response_format,
            "language": self.language,
            "prompt": self.prompt,
            "temperature": self.temperature,
            "timestamp_granularities": list(self.timestamp_granularities or ()) or None,
            "extra_fields": dict(self.extra_fields) if self.extra_fields else None,
        }

    def form_fields(self) -> list[tuple[str, str]]:
        """The multipart form fields of ``POST /audio/transcriptions`` (the file excluded)."""
        fields: list[tuple[str, str]] = [("model", self.model), ("response_format", self.response_format)]
        if self.language:
            fields.append(("language", self.language))
        if self.prompt:
            fields.append(("prompt", self.prompt))
        if self.temperature is not None:
            fields.append(("temperature", str(self.temperature)))
        for granularity in self.timestamp_granularities or ():
            fields.append(("timestamp_granularities[]", granularity))
        for key, value in (self.extra_fields or {}).items():
            values = value if isinstance(value, list | tuple) else [value]
            fields.extend((key, _field_text(v)) for v in values)
        return fields

    def fingerprint_settings(self) -> dict[str, Any]:
        """What shapes the transcript, as the manifest has always recorded it (the values, their
        names and their JSON forms are kept so manifests of earlier versions still skip)."""
        chunking = (
            {"chunk_seconds": self.chunk_seconds, "overlap_seconds": self.chunk_overlap_seconds}
            if self.chunk_seconds is not None
            else None
        )
        return {
            "model": self.model,
            "response_format": self.response_format,
            "language": self.language,
            "prompt": self.prompt,
            "temperature": self.temperature,
            **self.keywords(),
            "chunking": chunking,
        }


@dataclass
class TranscriptionResult:
    """One transcription as KubeAI answered it.

    :param content: the body as text (JSON text for the json formats).
    :param response_format: the format asked for.
    :param data: the parsed JSON for ``json`` and ``verbose_json``.
    :param attempts: requests made, retries included.
    :param bytes_sent: size of the audio uploaded (last attempt).
    :param seconds: wall time, retries included.
    :param pieces: for a long recording sent in pieces, one record per piece (start, end, attempts).
    """

    content: str
    response_format: str
    data: dict[str, Any] | None = None
    attempts: int = 1
    bytes_sent: int = 0
    seconds: float = 0.0
    pieces: list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The transcript text (for srt/vtt: the subtitle document)."""
        return str(self.data["text"]) if self.data is not None else self.content


class SpeechEndpoint(Protocol):
    """What the batch engine and the long-recording orchestrator call on KubeAI's endpoint."""

    stopping: threading.Event

    def send(
        self, audio: AudioSource, request: TranscriptionRequest, *, filename: str | None = None
    ) -> TranscriptionResult:
        """Transcribe one upload (whole: ``request``'s chunking is the caller's business)."""
        ...


def _field_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
