"""Long recordings: decode, cut into pieces at pauses, transcribe the pieces in parallel, stitch.

One request uses one KubeAI replica however many are ready, and KubeAI's proxy holds a whole
upload in memory with no server timeout; so a recording longer than ``chunk_seconds`` is sent as
pieces instead. Decoding streams into a spool file in the temporary folder (32 KB per second of
audio, deleted afterwards); each piece is uploaded from there as a 16 kHz mono WAV the moment the
decoder has passed its end, through the same concurrency limit and retries as everything else.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_kubeai_speech.exceptions import (
    AudioDecodeError,
    AudioExtraMissing,
    KubeAIEndpointError,
)
from airflow_provider_kubeai_speech.exceptions import PiecesFailed as PiecesFailed
from airflow_provider_kubeai_speech.speech import DEFAULT_OVERLAP_SECONDS as DEFAULT_OVERLAP_SECONDS
from airflow_provider_kubeai_speech.speech import MIN_CHUNK_SECONDS as MIN_CHUNK_SECONDS
from airflow_provider_kubeai_speech.speech import (
    TranscriptionResult,
    check_chunking,
)
from airflow_provider_kubeai_speech.text_safety import printable
from airflow_provider_kubeai_speech.transcription.answers import NotATranscript, check_timed_parts
from airflow_provider_kubeai_speech.transcription.decode import (
    INSTALL_HINT,
    SAMPLE_RATE,
    DecodeError,
    missing_audio_extra,
    pcm_blocks,
    probe,
)
from airflow_provider_kubeai_speech.transcription.splitter import Piece, PieceSplitter, piece_opener
from airflow_provider_kubeai_speech.transcription.stitch import MalformedPieceError, render, stitch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_provider_kubeai_speech.speech import SpeechEndpoint, TranscriptionRequest
    from airflow_provider_kubeai_speech.transcription.decode import AudioInfo
    from airflow_provider_kubeai_speech.transcription.piece_cache import PieceCache

#: What pieces are asked for, whatever the caller wants in the end: segments with their times.
PIECE_FORMAT = "verbose_json"
#: Word timestamps only when the caller keeps words: Whisper's word alignment skips speech after
#: a window that ends inside a sentence (docs/performance.rst), and stitching aligns pieces by
#: their words' text, which segments give too.
PIECE_GRANULARITIES = ("segment",)
PIECE_GRANULARITIES_WITH_WORDS = ("segment", "word")


@dataclass(frozen=True)
class ChunkSettings:
    """How long recordings are split.

    :param chunk_seconds: recordings longer than this are cut into pieces about this long.
    :param overlap_seconds: audio neighbouring pieces share around each cut.
    """

    chunk_seconds: float
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS

    def fingerprint(self) -> dict[str, float]:
        return {"chunk_seconds": self.chunk_seconds, "overlap_seconds": self.overlap_seconds}


def chunk_settings(chunk_seconds: Any, overlap_seconds: Any) -> ChunkSettings | None:
    """Check ``chunk_seconds`` and ``chunk_overlap_seconds`` (None: no splitting), naming the fix."""
    checked = check_chunking(chunk_seconds, overlap_seconds)
    if checked is None:
        return None
    chunk, overlap = checked
    missing = missing_audio_extra()
    if missing:
        raise AudioExtraMissing(
            f"chunk_seconds={chunk_seconds!r} needs {' and '.join(missing)} to decode and split recordings. "
            f"Fix: {INSTALL_HINT}, or chunk_seconds=None to send every recording whole."
        )
    return ChunkSettings(chunk, overlap)


def probe_recording(opener: Callable[[], BinaryIO], what: str) -> AudioInfo:
    """The container's duration and codec; :class:`AudioDecodeError` when FFmpeg cannot read it."""
    try:
        return probe(opener, what)
    except DecodeError as err:
        raise AudioDecodeError(str(err)) from err


@dataclass
class PieceOutcome:
    """One piece's transcript, and how it was had."""

    piece: Piece
    result: dict[str, Any]
    attempts: int = 0
    bytes_sent: int = 0
    cached: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "index": self.piece.index,
            "start": round(self.piece.start / SAMPLE_RATE, 3),
            "end": round(self.piece.end / SAMPLE_RATE, 3),
            "attempts": self.attempts,
            "cached": self.cached,
        }


@dataclass
class LongTranscript:
    """A long recording's stitched transcript.

    :param content: the body in the format asked for.
    :param data: parsed JSON for ``json`` and ``verbose_json``.
    :param pieces: one record per piece (for the manifest).
    """

    content: str
    data: dict[str, Any] | None
    text: str
    duration: float
    pieces: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0

    def to_result(self, response_format: str) -> TranscriptionResult:
        return TranscriptionResult(
            content=self.content,
            response_format=response_format,
            data=self.data,
            attempts=self.attempts,
            bytes_sent=self.bytes_sent,
            seconds=self.seconds,
            pieces=self.pieces,
        )


class LongRecording:
    """Transcribes one long recording piece by piece.

    :param opener: opens a fresh stream of the recording.
    :param what: how to name it in messages (its location).
    :param duration: the container's duration in seconds (spreads the cuts evenly).
    :param settings: chunk length and overlap.
    :param endpoint: transcribes each piece (pieces are asked for as ``verbose_json``, with word
        times only when the stitched transcript keeps words).
    :param request: the settings of the stitched transcript.
    :param submit: runs a piece transcription concurrently (an executor's ``submit``).
    :param cache: where finished pieces are kept for a rerun (None: not kept).
    :param stop: set when the task is killed: no new piece starts.
    :param log: a logger.
    :param parallel: pieces transcribed at once (the piece count is rounded up to a multiple).
    """

    def __init__(
        self,
        opener: Callable[[], BinaryIO],
        what: str,
        duration: float,
        settings: ChunkSettings,
        endpoint: SpeechEndpoint,
        request: TranscriptionRequest,
        submit: Callable[..., Future[PieceOutcome]],
        *,
        cache: PieceCache | None = None,
        stop: threading.Event | None = None,
        log: Any = None,
        parallel: int = 1,
    ) -> None:
        self.opener, self.what, self.duration, self.settings = opener, printable(what), duration, settings
        self.endpoint, self.request, self.submit, self.cache = endpoint, request, submit, cache
        self.stop = stop or threading.Event()
        self.log = log
        self.parallel = parallel
        self._stem = os.path.splitext(what.rsplit("/", 1)[-1])[0] or "audio"
        self._piece_failed = threading.Event()
        self._planned = 0
        self._sent = 0
        self._count_lock = threading.Lock()
        self._granularities: tuple[str, ...] = PIECE_GRANULARITIES

    def transcribe(self) -> LongTranscript:
        """Transcribe every piece (or take it from the cache) and stitch them, in the request's
        format (``word`` in its granularities keeps the word list of ``verbose_json``).

        :raises PiecesFailed: a piece failed after its retries, or the task was killed; the
            finished pieces stay in the cache.
        :raises AudioDecodeError: FFmpeg could not read the recording.
        """
        started = time.monotonic()
        response_format, granularities = self.request.response_format, self.request.timestamp_granularities
        if response_format == "verbose_json" and "word" in set(granularities or ()):
            self._granularities = PIECE_GRANULARITIES_WITH_WORDS
        if self.cache is not None:
            self.cache.open()
            cached = self.cache.everything()
            if cached is not None and all(_usable(record) for _, record in cached[0]):
                outcomes = [
                    PieceOutcome(piece, record["result"], record.get("attempts", 0), cached=True)
                    for piece, record in cached[0]
                ]
                self._log("%s: all %d pieces were transcribed before; stitching", self.what, len(outcomes))
                return self._finish(outcomes, cached[1], response_format, granularities, started)
        outcomes, samples = self._run_pieces()
        return self._finish(outcomes, samples, response_format, granularities, started)

    def _finish(
        self,
        outcomes: list[PieceOutcome],
        samples: int,
        response_format: str,
        granularities: Iterable[str] | None,
        started: float,
    ) -> LongTranscript:
        duration = samples / SAMPLE_RATE
        try:
            transcript = stitch([(o.piece, o.result) for o in outcomes], duration)
            content, data = render(transcript, response_format, granularities)
        except MalformedPieceError as err:
            raise MalformedPieceError(f"{self.what}: {err}") from err
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # what no check foresaw
            raise MalformedPieceError(
                f"{self.what}: the pieces' transcripts cannot be stitched: {type(err).__name__}: {err}"
            ) from err
        return LongTranscript(
            content=content,
            data=data,
            text=transcript["text"],
            duration=duration,
            pieces=[o.record() for o in outcomes],
            attempts=sum(o.attempts for o in outcomes if not o.cached),
            bytes_sent=sum(o.bytes_sent for o in outcomes),
            seconds=time.monotonic() - started,
        )

    def _run_pieces(self) -> tuple[list[PieceOutcome], int]:
        fd, spool_path = tempfile.mkstemp(prefix="kubeai-speech-", suffix=".pcm")
        futures: dict[int, Future[PieceOutcome]] = {}
        outcomes: dict[int, PieceOutcome] = {}
        pieces: list[Piece] = []
        try:
            with os.fdopen(fd, "wb") as spool:
                splitter = PieceSplitter(
                    spool,
                    expected_seconds=self.duration,
                    chunk_seconds=self.settings.chunk_seconds,
                    overlap_seconds=self.settings.overlap_seconds,
                    parallel=self.parallel,
                )
                self._planned = splitter.planned
                self._log(
                    "%s: %.0f s of audio, cutting about %d pieces of about %.0f s (overlap %.1f s)",
                    self.what, self.duration, splitter.planned, splitter.step / SAMPLE_RATE,
                    self.settings.overlap_seconds,
                )  # fmt: skip

                def dispatch(ready: list[Piece]) -> None:
                    for piece in ready:
                        pieces.append(piece)
                        record = self.cache.get(piece) if self.cache is not None else None
                        if record is not None and _usable(record):
                            outcomes[piece.index] = PieceOutcome(
                                piece, record["result"], record.get("attempts", 0), cached=True
                            )
                        else:
                            futures[piece.index] = self.submit(self._one, spool_path, piece)

                for block in _decoded(self.opener, self.what):
                    if self.stop.is_set() or self._piece_failed.is_set():
                        break
                    dispatch(splitter.feed(block))
                else:
                    dispatch(splitter.finish())
                    if self.cache is not None:
                        self.cache.complete(pieces, splitter.samples)
                complete = not self.stop.is_set() and not self._piece_failed.is_set()
            self._collect(futures, outcomes, pieces, complete)
            return [outcomes[p.index] for p in pieces], splitter.samples
        finally:
            for future in futures.values():
                future.cancel()
            wait(futures.values())  # nothing may still read the spool when it goes
            with contextlib.suppress(OSError):
                os.unlink(spool_path)

    def _one(self, spool_path: str, piece: Piece) -> PieceOutcome:
        if self.stop.is_set() or self._piece_failed.is_set():
            raise _Stopped  # killed, or the recording has already failed: do not send more
        try:
            result = self.endpoint.send(
                piece_opener(spool_path, piece),
                self.request.but(
                    response_format=PIECE_FORMAT,
                    timestamp_granularities=self._granularities,
                    chunk_seconds=None,
                ),
                filename=f"{self._stem}.piece{piece.index:05d}.wav",
            )
        except BaseException:
            self._piece_failed.set()
            raise
        data = result.data or {}
        try:
            check_timed_parts(data)
        except NotATranscript as err:
            self._piece_failed.set()
            raise MalformedPieceError(f"the answer is not usable: {err}") from err
        if self.cache is not None:
            self.cache.put(piece, data, result.attempts)
        with self._count_lock:
            self._sent += 1
            sent = self._sent
        self._log(
            "%s: %s transcribed (%d of about %d sent)", self.what, piece.describe(), sent, self._planned
        )
        return PieceOutcome(piece, data, result.attempts, result.bytes_sent)

    def _collect(
        self,
        futures: dict[int, Future[PieceOutcome]],
        outcomes: dict[int, PieceOutcome],
        pieces: list[Piece],
        complete: bool,
    ) -> None:
        errors: list[str] = []
        attempts = 0
        for index in sorted(futures):
            future = futures[index]
            if errors:
                future.cancel()
            try:
                outcome = future.result()
            except (CancelledError, _Stopped):
                continue
            except Exception as err:
                if isinstance(err, KubeAIEndpointError | PiecesFailed):
                    attempts += err.attempts
                errors.append(f"{_piece_by_index(pieces, index).describe()}: {err}")
                continue
            outcomes[index] = outcome
        if not errors and complete:
            return
        done = [outcomes[i].record() for i in sorted(outcomes)]
        kept = f"; {len(done)} finished piece(s) are kept in {self.cache.location}" if self.cache else ""
        rerun = ", and a rerun sends only the others" if self.cache else ""
        if errors:
            head = f"{len(errors)} piece(s) failed{kept}{rerun}:"
            message = "\n".join([head, *(f"    {e}" for e in errors[:5])])
        else:
            message = f"stopped after {len(done)} piece(s) (the task was killed){kept}{rerun}."
        raise PiecesFailed(message, done, attempts)

    def _log(self, message: str, *args: Any) -> None:
        if self.log is not None:
            self.log.info(message, *args)


class _Stopped(Exception):
    """This piece was not sent: the task was killed, or another piece had already failed."""


def _decoded(opener: Callable[[], BinaryIO], what: str) -> Iterator[bytes]:
    try:
        yield from pcm_blocks(opener, what)
    except DecodeError as err:
        raise AudioDecodeError(str(err)) from err


def _usable(record: dict[str, Any]) -> bool:
    """A cached piece result worth reusing (one written by hand or by an older version may not be)."""
    try:
        check_timed_parts(record.get("result"))
    except NotATranscript:
        return False
    return True


def _piece_by_index(pieces: list[Piece], index: int) -> Piece:
    return next(p for p in pieces if p.index == index)


def transcribe_long_recording(
    endpoint: SpeechEndpoint,
    opener: Callable[[], BinaryIO],
    what: str,
    request: TranscriptionRequest,
    *,
    duration: float | None = None,
    submit: Callable[..., Future[PieceOutcome]] | None = None,
    parallel: int = 1,
    cache: PieceCache | None = None,
    stop: threading.Event | None = None,
    log: Any = None,
) -> LongTranscript | None:
    """The one way a long recording is transcribed, by the hook and by the batch alike.

    :param endpoint: sends each piece.
    :param opener: opens a fresh stream of the recording.
    :param what: how to name it in messages.
    :param request: the settings (its chunking says how to split; None: not split, returns None).
    :param duration: the container's duration when known; else it is probed here.
    :param submit: runs pieces concurrently (an executor's ``submit``); None: a pool of ``parallel``
        threads of its own, for this recording.
    :param parallel: pieces in flight at once.
    :param cache: where finished pieces are kept for a rerun.
    :param stop: set when the task is killed (default: the endpoint's ``stopping``).
    :param log: a logger.
    :return: the stitched transcript, or None when the recording is not longer than a piece.
    :raises PiecesFailed: a piece failed after its retries, or the task was killed.
    """
    settings = chunk_settings(request.chunk_seconds, request.chunk_overlap_seconds)
    if settings is None:
        return None
    if duration is None:
        duration = probe_recording(opener, what).duration
    if duration <= settings.chunk_seconds:
        return None
    parallel = max(1, int(parallel))
    with contextlib.ExitStack() as stack:
        if submit is None:
            submit = stack.enter_context(
                ThreadPoolExecutor(parallel, thread_name_prefix="kubeai-piece")
            ).submit
        recording = LongRecording(
            opener, what, duration, settings, endpoint, request, submit,
            cache=cache, stop=stop if stop is not None else endpoint.stopping, log=log, parallel=parallel,
        )  # fmt: skip
        return recording.transcribe()
