"""The batch engine: many recordings through one model with bounded concurrency, losing nothing.

- Every input is checked first (missing, empty, unreadable, not audio); when those problems alone
  exceed the failure budget the batch stops before a single upload.
- Up to ``max_concurrency`` uploads run at once over one pooled session; each is retried by the
  endpoint client on transient failures.
- Each transcript is written atomically as soon as it arrives and a manifest record is added to
  this task's part of the manifest (:mod:`.manifest`), so a crash or kill loses at most the files
  in flight; ``skip_existing`` resumes from there.
- ``skip_existing`` skips an input only when the manifest's last record of it was made with the
  same settings (model, format, language, prompt, ..., and the same input size and version) and
  its transcript is still there: one read of the manifest and one listing of the folder, however
  large the batch, and skipped inputs are not read at all.
- When failures exceed the budget, no new file starts; files in flight finish and are kept.
- When the output itself fails (disk full, read-only, store unreachable), no new request starts;
  files in flight finish, whatever can still be written is, and :class:`OutputFailed` says so.
- With ``chunk_seconds``, recordings longer than that are probed, cut into pieces and stitched
  (:mod:`.long_audio`); pieces share the batch's concurrency limit, and finished pieces are kept
  under ``.pieces/`` so a rerun sends only the missing ones.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.exceptions import BatchFailed as BatchFailed
from airflow_provider_kubeai_speech.exceptions import KubeAIEndpointError, KubeAISpeechError, PiecesFailed
from airflow_provider_kubeai_speech.exceptions import OutputFailed as OutputFailed
from airflow_provider_kubeai_speech.speech import TranscriptionRequest, TranscriptionResult
from airflow_provider_kubeai_speech.text_safety import printable
from airflow_provider_kubeai_speech.transcription.manifest import (
    FileResult,
    ManifestWriter,
    read_manifest_state,
    settings_fingerprint,
)
from airflow_provider_kubeai_speech.transcription.outputs import (
    OutputFolder,
    OutputStorageError,
    output_names,
)
from airflow_provider_kubeai_speech.transcription.piece_cache import PieceCache
from airflow_provider_kubeai_speech.transcription.sources import AudioInput, check_input
from airflow_provider_kubeai_speech.transcription.storage import describe_storage_error

if TYPE_CHECKING:
    from airflow_provider_kubeai_speech.speech import AudioSource, SpeechEndpoint
    from airflow_provider_kubeai_speech.transcription.long_audio import LongTranscript

FAILURES_SHOWN = 20
#: Files in flight before the batch's first answer (see ``BatchTranscriber._send_window``).
RAMP_START = 2
#: Skip records are written this many at a time (one write and one fsync each).
SKIP_LINES_AT_ONCE = 1000


@dataclass
class BatchOptions:
    """How a batch runs (what it asks the endpoint is the :class:`~..speech.TranscriptionRequest`).

    :param max_concurrency: uploads in flight at once.
    :param skip_existing: inputs whose transcript exists are not sent again.
    :param max_failed: failures tolerated: a count, or a fraction of the batch when below 1.
    :param progress_interval: seconds between progress lines.
    """

    max_concurrency: int = 4
    skip_existing: bool = True
    max_failed: float = 0
    progress_interval: float = 15.0


#: Results of transcribed and skipped files a summary keeps (failures are always kept): enough
#: for lineage and tests, while 100 000 files do not hold 100 000 records (the manifest has them).
RESULTS_KEPT = 10_000


@dataclass
class BatchSummary:
    """The outcome of a batch (its ``to_xcom()`` is small whatever the batch size).

    :param results: every failure, and the first :data:`RESULTS_KEPT` other results (the counts
        cover them all; the manifest has every record).
    """

    results: list[FileResult] = field(default_factory=list)
    output_uri: str | None = None
    manifest_uri: str | None = None
    seconds: float = 0.0
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, result: FileResult) -> None:
        """Count ``result``, and keep it when it failed or while fewer than :data:`RESULTS_KEPT` are kept."""
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        if result.status == "failed" or len(self.results) < RESULTS_KEPT:
            self.results.append(result)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def to_xcom(self) -> dict[str, Any]:
        failures: list[dict[str, Any]] = []
        for r in self.results:
            if len(failures) == FAILURES_SHOWN:
                break
            if r.status == "failed":
                failures.append(
                    {"input": _clip(r.input), "error": None if r.error is None else _clip(r.error)}
                )
        summary: dict[str, Any] = {
            "total": self.total,
            "succeeded": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
            "output_uri": self.output_uri,
            "manifest_uri": self.manifest_uri,
            "failures": failures,
        }
        if self.transcripts:
            summary["transcripts"] = self.transcripts
        return summary


def _clip(text: str, size: int = 1000) -> str:
    """At most ``size`` characters: 20 failures stay far below XCom's comfort, however long an error."""
    return text if len(text) <= size else text[: size - 15] + " ... (clipped)"


class _NotStarted(KubeAISpeechError):
    """The batch stopped before this file's request was sent."""


def failure_budget(max_failed: float, total: int) -> int:
    """Failures tolerated: ``max_failed`` itself when >= 1, else that fraction of ``total``."""
    if max_failed < 0:
        raise ValueError(f"max_failed={max_failed!r} must be >= 0 (a count, or a fraction below 1).")
    if max_failed >= 1:
        return int(max_failed)
    return math.floor(max_failed * total + 1e-9)


Transcribe = Callable[..., TranscriptionResult]


class _KeywordEndpoint:
    """A :class:`~..speech.SpeechEndpoint` over a ``hook.transcribe``-style callable
    (``transcribe(model, audio, filename=..., response_format=..., ...)``), for callers of earlier versions."""

    def __init__(self, transcribe: Transcribe) -> None:
        self.transcribe = transcribe
        self.stopping = threading.Event()

    def send(
        self, audio: AudioSource, request: TranscriptionRequest, *, filename: str | None = None
    ) -> TranscriptionResult:
        return self.transcribe(request.model, audio, filename=filename, **request.keywords())


class _GatedEndpoint:
    """The batch's endpoint: every upload (whole files and pieces) within ``max_concurrency``,
    and none started once the batch is stopping."""

    def __init__(self, batch: BatchTranscriber) -> None:
        self.batch = batch
        self.stopping = batch.stop

    def send(
        self, audio: AudioSource, request: TranscriptionRequest, *, filename: str | None = None
    ) -> TranscriptionResult:
        batch = self.batch
        with batch._gate:
            if batch.stop.is_set() or (batch.output is not None and batch.output.failure is not None):
                raise _NotStarted("not sent: the batch is stopping")
            return batch.endpoint.send(audio, request, filename=filename)


class BatchTranscriber:
    """Runs one batch.

    :param transcribe: the endpoint (``hook.endpoint``, a :class:`~..speech.SpeechEndpoint`), or
        a ``hook.transcribe``-compatible callable.
    :param request: the transcription settings (a Model name alone means KubeAI's defaults).
    :param options: batch options.
    :param output: where transcripts go (None: into the summary, for small batches).
    :param log: a logger.
    :param run_id: recorded in the manifest.
    """

    def __init__(
        self,
        transcribe: SpeechEndpoint | Transcribe,
        request: TranscriptionRequest | str,
        options: BatchOptions,
        output: OutputFolder | None,
        log: Any,
        run_id: str | None = None,
    ) -> None:
        self.transcribe = transcribe
        self.request = request if isinstance(request, TranscriptionRequest) else TranscriptionRequest(request)
        self.model = self.request.model
        self.options = options
        self.output = output
        self.log = log
        self.run_id = run_id
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._halted = False
        self._transcripts: list[dict[str, Any]] = []
        self._gate = threading.BoundedSemaphore(options.max_concurrency)
        self._pieces: ThreadPoolExecutor | None = None
        self._writer: ManifestWriter | None = None
        self._failed = 0  # kept as records arrive: counting the results per file would be O(n) each
        self._output_failure: OutputStorageError | None = None
        self._sender = _GatedEndpoint(self)

    @property
    def transcribe(self) -> SpeechEndpoint:
        """The endpoint the batch sends to (set it to an endpoint or a ``hook.transcribe``-style callable)."""
        return self.endpoint

    @transcribe.setter
    def transcribe(self, transcribe: SpeechEndpoint | Transcribe) -> None:
        if callable(transcribe) and not hasattr(transcribe, "send"):
            self.endpoint: SpeechEndpoint = _KeywordEndpoint(transcribe)
        else:
            self.endpoint = transcribe  # type: ignore[assignment]

    # -- phases --------------------------------------------------------------------------------

    def check(self, inputs: list[AudioInput]) -> list[AudioInput]:
        """Check every input: local files in a loop (a thread pool costs more than it saves there),
        remote ones in parallel (each costs a round trip). With chunking, each is also probed for
        its duration, which finds corrupt files before anything is sent."""
        chunk_seconds = self.request.chunk_seconds
        check = check_input if chunk_seconds is None else functools.partial(_check_and_probe, chunk_seconds)
        if all(item.path is None for item in inputs):
            return [check(item) for item in inputs]
        with ThreadPoolExecutor(max(1, min(16, self.options.max_concurrency * 2))) as pool:
            return list(pool.map(check, inputs))

    def run(self, inputs: list[AudioInput]) -> BatchSummary:
        """Transcribe ``inputs`` (each once, however often it is listed).

        :raises BatchFailed: more inputs failed than ``max_failed`` allows, or the task was killed.
        :raises OutputFailed: the output folder failed; the batch stopped sending files.
        """
        started = time.monotonic()
        unique: dict[str, AudioInput] = {}
        for item in inputs:
            unique.setdefault(item.uri, item)
        inputs = list(unique.values())
        self._writer = ManifestWriter(self.output, self.run_id) if self.output is not None else None
        summary = BatchSummary(
            output_uri=self.output.uri if self.output else None,
            manifest_uri=self._writer.uri if self._writer else None,
        )
        names = output_names([item.uri for item in inputs], self.request.response_format)
        settings = {item.uri: self.settings(item) for item in inputs}
        done = self._already_done(inputs, names, settings)
        self.check([item for item in inputs if item.uri not in done])
        budget = failure_budget(self.options.max_failed, len(inputs))
        bad = [item for item in inputs if item.problem and item.uri not in done]
        if len(bad) > budget:
            for i in bad:
                summary.add(FileResult(i.uri, None, "failed", error=i.problem, run_id=self.run_id))
            raise BatchFailed(self._failure_message(summary, budget, len(inputs), before_start=True), summary)
        if self.output is not None and self._writer is not None:
            self.output.prepare()
            self._writer.open()
            leftovers = self.output.remove_partials()
            if leftovers:
                self.log.info(
                    "Removed %d partial file(s) an interrupted run left in %s", leftovers, self.output.uri
                )
        todo: list[tuple[AudioInput, str]] = []
        try:
            skipped_lines: list[str] = []
            for item, name in zip(inputs, names, strict=True):
                if item.uri in done:
                    assert self.output is not None
                    result = FileResult(
                        item.uri,
                        self._target(name),
                        "skipped",
                        run_id=self.run_id,
                        settings=settings[item.uri],
                    )
                    summary.add(result)
                    skipped_lines.append(result.to_json())
                    if len(skipped_lines) >= SKIP_LINES_AT_ONCE and self._writer is not None:
                        self._guarded(self._writer.append_many, skipped_lines)
                        skipped_lines = []
                elif item.problem:
                    self._record(
                        summary, FileResult(item.uri, None, "failed", error=item.problem, run_id=self.run_id)
                    )
                else:
                    todo.append((item, name))
            if self._writer is not None and skipped_lines:
                self._guarded(self._writer.append_many, skipped_lines)
            self.log.info(
                "Transcribing %d of %d file(s) with model %r (%d already done, %d refused), %d at a time",
                len(todo), len(inputs), self.model, len(done), len(bad), self.options.max_concurrency,
            )  # fmt: skip
            if self._output_failure is None:
                self._transcribe_all(todo, summary, budget, len(inputs), settings)
        finally:
            if self._writer is not None:
                self._guarded(self._writer.close)
        order = {item.uri: index for index, item in enumerate(inputs)}
        summary.transcripts = sorted(self._transcripts, key=lambda t: order[t["input"]])
        summary.seconds = time.monotonic() - started
        if self._output_failure is not None:
            failure = self._output_failure
            raise OutputFailed(self._output_failure_message(summary, len(inputs)), summary, failure)
        failed = summary.count("failed")
        if failed > budget or self.stop.is_set():
            raise BatchFailed(self._failure_message(summary, budget, len(inputs)), summary)
        if failed:
            self.log.warning(
                "%d file(s) failed, within max_failed=%s; see %s",
                failed,
                self.options.max_failed,
                summary.manifest_uri,
            )
        return summary

    # -- what decides a skip -------------------------------------------------------------------

    def settings(self, item: AudioInput) -> str:
        """The fingerprint of everything that shapes ``item``'s transcript: the request's settings
        and the input's size and version (a replaced recording is transcribed again)."""
        return settings_fingerprint(
            {**self.request.fingerprint_settings(), "size": item.size, "version": item.version}
        )

    def _already_done(self, inputs: list[AudioInput], names: list[str], settings: dict[str, str]) -> set[str]:
        """Inputs whose last manifest record is a transcript made with the same settings, into the
        same name, that is still in the folder: one manifest read and one listing in all."""
        if self.output is None or not self.options.skip_existing:
            return set()
        state = read_manifest_state(self.output, only=settings)  # a shard keeps its own inputs' records
        if not state.last:
            return set()
        candidates = {
            item.uri: name
            for item, name in zip(inputs, names, strict=True)
            if item.problem is None and state.done(item.uri, self._target(name), settings[item.uri])
        }
        if not candidates:
            return set()
        present = self.output.names()
        return {uri for uri, name in candidates.items() if name in present}

    def _target(self, name: str) -> str | None:
        """Where ``name`` goes, or None when the folder refuses it (a link leading outside)."""
        assert self.output is not None
        try:
            return self.output.target(name)
        except ValueError:
            return None

    # -- sending -------------------------------------------------------------------------------

    def _transcribe_all(
        self,
        todo: list[tuple[AudioInput, str]],
        summary: BatchSummary,
        budget: int,
        total: int,
        settings: dict[str, str],
    ) -> None:
        if not todo:
            return
        progress = _Progress(len(todo), self.options.progress_interval, self.log)
        concurrency = self.options.max_concurrency
        long = self.request.chunk_seconds is not None and any(self._is_long(item) for item, _ in todo)
        # Pieces run in a pool of their own, so a file waiting for its pieces never holds the
        # thread a piece needs; the gate keeps uploads of both kinds within max_concurrency.
        self._pieces = ThreadPoolExecutor(concurrency, thread_name_prefix="kubeai-piece") if long else None
        try:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="kubeai-transcribe") as pool:
                self._send_window(pool, todo, summary, budget, settings, progress)
        finally:
            if self._pieces is not None:
                self._pieces.shutdown(cancel_futures=True)
        progress.finish()

    def _send_window(
        self,
        pool: ThreadPoolExecutor,
        todo: list[tuple[AudioInput, str]],
        summary: BatchSummary,
        budget: int,
        settings: dict[str, str],
        progress: _Progress,
    ) -> None:
        """Submit files as earlier ones finish, never more than a window ahead: one future per
        file submitted at once would hold 100 000 futures (and their closures) for the whole batch.

        The window starts at :data:`RAMP_START` and opens to twice ``max_concurrency`` at the first
        answer: a Model scaled to zero gets a few requests, not a herd, while its first replica starts;
        after that enough are in flight to pass ``targetRequests`` and drive the autoscaler up."""
        concurrency = self.options.max_concurrency
        window = min(concurrency, RAMP_START)
        queue = iter(todo)
        pending: set[Future[FileResult | None]] = set()
        left = len(todo)
        while True:
            while len(pending) < window and not self._halted and left:
                item, name = next(queue)
                left -= 1
                pending.add(pool.submit(self._one, item, name, summary, settings[item.uri]))
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            window = 2 * concurrency
            for future in finished:
                if future.cancelled() or (result := future.result()) is None:
                    continue  # not started: the batch was halted
                progress.update(result.status)
            stopping = self.stop.is_set() or self._output_failure is not None
            if (self._failed > budget or stopping) and not self._halted:
                self._halt(pending, left)

    def _halt(self, futures: Iterable[Future[Any]], unsubmitted: int = 0) -> None:
        self._halted = True
        cancelled = sum(future.cancel() for future in futures) + unsubmitted
        if self._output_failure is not None:
            reason = f"the output failed: {self._output_failure.location}"
        elif self.stop.is_set():
            reason = "the task was killed"
        else:
            reason = "failures exceed max_failed"
        self.log.error(
            "Stopping the batch (%s): %d file(s) not started; those in flight finish and are kept",
            reason,
            cancelled,
        )

    def _one(self, item: AudioInput, name: str, summary: BatchSummary, settings: str) -> FileResult | None:
        if self._halted or self.stop.is_set():
            return None
        try:
            result = self._transcribe_one(item, name, settings)
        except _NotStarted:
            return None
        self._record(summary, result)  # here, not in the caller: the manifest line follows the output at once
        return result

    def _check_output(self) -> None:
        """Stop the batch at the output's first fatal failure (this thread's, or a flush's)."""
        failure = self.output.failure if self.output is not None else None
        if failure is not None and self._output_failure is None:
            with self._lock:
                if self._output_failure is None:
                    self._output_failure = failure
                    self.log.error("The output failed, no more files are sent: %s", printable(str(failure)))
            self.stop.set()  # pieces of long recordings in flight stop too

    def _guarded(self, write: Callable[..., None], *args: Any) -> None:
        """A manifest write whose failure stops the batch instead of escaping from it."""
        with contextlib.suppress(OutputStorageError):  # remembered as the folder's failure
            write(*args)
        self._check_output()

    def _is_long(self, item: AudioInput) -> bool:
        chunk_seconds = self.request.chunk_seconds
        return chunk_seconds is not None and (item.duration or 0.0) > chunk_seconds

    def _transcribe_one(self, item: AudioInput, name: str, settings: str) -> FileResult:
        started = time.monotonic()
        pieces = None
        try:
            if self._is_long(item):
                long = self._transcribe_long(item, name, settings)
                content, text, pieces = long.content, long.text, long.pieces
                attempts, sent = long.attempts, long.bytes_sent
            else:
                result = self._sender.send(
                    item.opener(), self.request.but(chunk_seconds=None), filename=item.name
                )
                content, text, attempts, sent = (
                    result.content,
                    result.text,
                    result.attempts,
                    result.bytes_sent,
                )
        except _NotStarted:
            raise
        except KubeAISpeechError as err:
            self._check_output()
            error = str(err)
            if self._output_failure is not None and not isinstance(err, OutputStorageError):
                error = f"not finished, the output failed ({self._output_failure.location}): {error}"
            return FileResult(
                item.uri,
                None,
                "failed",
                attempts=err.attempts if isinstance(err, KubeAIEndpointError | PiecesFailed) else 0,
                duration=time.monotonic() - started,
                error=error,
                run_id=self.run_id,
                pieces=err.pieces if isinstance(err, PiecesFailed) else None,
            )
        except Exception as err:  # OSError, or a storage library's error while reading the input
            return FileResult(
                item.uri,
                None,
                "failed",
                duration=time.monotonic() - started,
                error=f"cannot read {describe_storage_error(err, item.uri)}",
                run_id=self.run_id,
            )
        output = None
        if self.output is not None:
            try:
                output = self.output.write(name, content)
            except (OutputStorageError, ValueError) as err:
                self._check_output()
                return FileResult(
                    item.uri,
                    None,
                    "failed",
                    attempts=attempts,
                    bytes=sent,
                    duration=time.monotonic() - started,
                    error=f"transcribed, but the transcript was not kept: {err}",
                    run_id=self.run_id,
                    pieces=pieces,
                )
            if pieces is not None:
                self._guarded(PieceCache.for_output(self.output, name, {}).remove)
        else:
            with self._lock:
                self._transcripts.append({"input": item.uri, "name": name, "content": content, "text": text})
        return FileResult(
            item.uri,
            output,
            "ok",
            attempts=attempts,
            bytes=sent,
            duration=time.monotonic() - started,
            run_id=self.run_id,
            pieces=pieces,
            settings=settings,
        )

    def _transcribe_long(self, item: AudioInput, name: str, settings: str) -> LongTranscript:
        from airflow_provider_kubeai_speech.transcription.long_audio import transcribe_long_recording

        request = self.request
        assert request.chunk_seconds is not None and self._pieces is not None
        cache = None
        if self.output is not None:
            # Pieces are always asked for as verbose_json with timestamps, so the format is left
            # out: a rerun in another format reuses them; another model or language does not.
            fingerprint = {
                "input": item.uri,
                "size": item.size,
                "version": item.version,
                "chunk_seconds": request.chunk_seconds,
                "overlap_seconds": request.chunk_overlap_seconds,
                "settings": settings_fingerprint(
                    {
                        **request.fingerprint_settings(),
                        "response_format": None,
                        "timestamp_granularities": None,
                    }
                ),
                # pieces are decoded differently with word timestamps: never reuse one kind as the other
                "piece_words": request.response_format == "verbose_json"
                and "word" in (request.timestamp_granularities or ()),
            }
            cache = PieceCache.for_output(self.output, name, fingerprint)
        long = transcribe_long_recording(
            self._sender,
            item.opener(),
            item.uri,
            request,
            duration=item.duration or 0.0,
            submit=self._pieces.submit,
            parallel=self.options.max_concurrency,
            cache=cache,
            stop=self.stop,
            log=self.log,
        )
        assert long is not None  # _is_long: longer than a piece
        return long

    def _record(self, summary: BatchSummary, result: FileResult) -> None:
        with self._lock:
            summary.add(result)
            self._failed += result.status == "failed"
            if self._writer is not None:
                with contextlib.suppress(OutputStorageError):  # remembered: checked below, the batch stops
                    self._writer.append(result.to_json())
        self._check_output()

    def _failure_message(
        self, summary: BatchSummary, budget: int, total: int, *, before_start: bool = False
    ) -> str:
        failures = summary.failures
        lines = [f"  - {printable(r.input)}: {printable(str(r.error))}" for r in failures[:FAILURES_SHOWN]]
        if len(failures) > FAILURES_SHOWN:
            lines.append(f"  ... and {len(failures) - FAILURES_SHOWN} more (see {summary.manifest_uri})")
        if before_start:
            head = (
                f"{len(failures)} of {total} input(s) cannot be transcribed, more than max_failed={self.options.max_failed} "
                f"allows ({budget}); nothing was sent to KubeAI. "
                # raising max_failed only helps when some inputs are good
                + ("Fix the inputs or raise max_failed:" if len(failures) < total else "Fix the inputs:")
            )
        elif self.stop.is_set():
            head = f"Batch stopped (task killed): {summary.count('ok')} transcribed, {len(failures)} failed of {total}."
        else:
            head = (
                f"{len(failures)} of {total} input(s) failed, more than max_failed={self.options.max_failed} allows ({budget}). "
                f"{summary.count('ok')} transcript(s) were written and {summary.count('skipped')} already existed"
                + (
                    f" (manifest: {summary.manifest_uri}); a rerun with skip_existing=True sends only the rest:"
                    if summary.manifest_uri
                    else ":"
                )
            )
        return "\n".join([head, *lines])

    def _output_failure_message(self, summary: BatchSummary, total: int) -> str:
        assert self._output_failure is not None
        ok, failed = summary.count("ok"), summary.count("failed")
        not_started = total - summary.total
        writer = self._writer
        unrecorded = writer.pending if writer is not None else 0
        recorded = (
            f"recorded in the manifest {summary.manifest_uri}"
            if not unrecorded
            else f"{unrecorded} record(s) could not be written to the manifest {summary.manifest_uri}"
        )
        head = (
            f"Batch stopped, the output failed: {printable(str(self._output_failure))}\n"
            f"{ok} transcript(s) were written and {summary.count('skipped')} already existed ({recorded}); "
            f"{failed} failed and {not_started} of {total} were not sent. After fixing the output, "
            "a rerun with skip_existing=True sends only the rest."
        )
        failures = summary.failures
        lines = [f"  - {printable(r.input)}: {printable(str(r.error))}" for r in failures[:FAILURES_SHOWN]]
        return "\n".join([head, *lines])


#: Speech is not stored below 4 kbit/s: a file smaller than this many bytes per second of
#: ``chunk_seconds`` cannot be longer than a piece, and is sent whole without being probed.
MIN_BYTES_PER_SECOND = 500


def _check_and_probe(chunk_seconds: float, item: AudioInput) -> AudioInput:
    """:func:`check_input`, then the duration of any file that may be longer than a piece (a file
    FFmpeg cannot read is refused here, before anything is sent)."""
    from airflow_provider_kubeai_speech.transcription.decode import DecodeError, probe

    item = check_input(item)
    could_be_long = item.size is None or item.size > chunk_seconds * MIN_BYTES_PER_SECOND
    if item.problem is None and could_be_long:
        try:
            item.duration = probe(item.opener(), item.uri).duration
        except DecodeError as err:
            item.problem = (
                f"{err}. Fix: re-export it (e.g. ffmpeg -i in -ar 16000 -ac 1 out.wav) or remove it"
            )
        except Exception as err:  # a storage backend's error while reading the header
            item.problem = f"cannot read {describe_storage_error(err, item.uri)}"
    return item


class _Progress:
    """Progress lines at a steady pace: done/total, rate, ETA."""

    def __init__(self, total: int, interval: float, log: Any) -> None:
        self.total, self.interval, self.log = total, interval, log
        self.done = 0
        self.failed = 0
        self.started = self.last = time.monotonic()
        self._logged_done = False

    def update(self, status: str) -> None:
        self.done += 1
        self.failed += status == "failed"
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(now)

    def finish(self) -> None:
        if self.last != self.started and self.done == self.total and self._logged_done:
            return
        self._line(time.monotonic())

    def _line(self, now: float) -> None:
        self._logged_done = self.done == self.total
        elapsed = max(1e-9, now - self.started)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        self.log.info(
            "Progress: %d/%d (%.0f%%), %d failed, %.1f files/s, ETA %s",
            self.done, self.total, 100 * self.done / self.total, self.failed, rate, "-" if math.isinf(eta) else f"{eta:.0f} s",
        )  # fmt: skip
