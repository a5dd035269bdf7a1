"""The results manifest: one JSON line per input per run, in parts each task writes on its own.

Layout, in the output folder::

    _transcriptions/
        part-<started>-<run id>-<token>.jsonl           a local folder: one file per task try,
                                                        appended and fsynced per record
        part-<started>-<run id>-<token>-<seq>.jsonl     an object store: one object per flush,
                                                        every 100 records or 10 s, and at the end
    _transcriptions.jsonl                               the single file of earlier versions (read, never written)

No task ever rewrites or appends to another task's part, so any number of tasks can write one
folder, and appending a record costs the same at the first file and the 100 000th. Lines are
ASCII (``ensure_ascii``), so every JSONL reader splits them the same way; a line cut by a failed
write is skipped by :func:`read_manifest_state`, and a writer never glues a record onto it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Iterator, Mapping

    from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder

#: The manifest's folder inside the output folder.
MANIFEST_FOLDER = "_transcriptions"
#: The single manifest file earlier versions appended to; read, never written.
LEGACY_MANIFEST_NAME = "_transcriptions.jsonl"
#: On an object store, a part is flushed after this many records or seconds, whichever comes first.
FLUSH_RECORDS = 100
FLUSH_SECONDS = 10.0
#: The last flush is retried after these pauses (seconds) before its records are given up.
CLOSE_RETRY_DELAYS = (0.5, 1.5)
_PART = re.compile(r"part-[A-Za-z0-9_.-]+\.jsonl\Z")
_READ_AT_ONCE = 64


@dataclass
class FileResult:
    """What happened to one input.

    :param input: the input's location.
    :param output: where its transcript is (None when it failed).
    :param status: ``ok``, ``skipped`` (already transcribed) or ``failed``.
    :param attempts: requests made for it (0 when skipped or refused before sending).
    :param bytes: bytes uploaded.
    :param duration: seconds spent on it.
    :param error: why it failed.
    :param run_id: the Airflow run that produced the line.
    :param pieces: for a long recording sent in pieces: each piece's span (seconds), attempts,
        and whether its result came from an earlier run.
    :param settings: the fingerprint of everything that shapes the transcript (model, format,
        language, prompt, ..., and the input's size and version); a rerun skips an input only when
        its last record has the same one.
    """

    input: str
    output: str | None
    status: str
    attempts: int = 0
    bytes: int = 0
    duration: float = 0.0
    error: str | None = None
    run_id: str | None = None
    pieces: list[dict[str, Any]] | None = None
    settings: str | None = None

    def to_json(self) -> str:
        record: dict[str, Any] = asdict(self)
        record["duration"] = round(self.duration, 3)
        for optional in ("pieces", "settings"):
            if record[optional] is None:
                del record[optional]
        record["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # ASCII only: U+2028, U+0085 and the like in a file name would split the line for
        # readers that use str.splitlines().
        return json.dumps(record, ensure_ascii=True)


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """A short, stable digest of ``settings`` (JSON-able values; key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, ensure_ascii=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_manifest(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Parse manifest lines, ignoring lines a failed write or a kill left incomplete."""
    return list(_parse(line.encode() if isinstance(line, str) else line for line in lines))


def _parse(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("input"), str):
            yield record


#: What :func:`read_manifest_state` keeps of each input's latest record unless asked for all of it.
STATE_FIELDS = ("input", "output", "status", "error", "settings", "at")


@dataclass
class BatchState:
    """The last record of each input over every part of a folder's manifest.

    :param last: input location -> its latest record (ties in time go to the later part); only
        :data:`STATE_FIELDS` unless read with ``full=True``.
    :param parts: manifest files read (the legacy single file counts as one).
    :param records: records read.
    :param full: whether ``last`` keeps whole records.
    """

    last: dict[str, dict[str, Any]] = field(default_factory=dict)
    parts: int = 0
    records: int = 0
    full: bool = False

    def get(self, input_uri: str) -> dict[str, Any] | None:
        """The latest record of ``input_uri``, or None."""
        return self.last.get(input_uri)

    def status(self, input_uri: str) -> str | None:
        """``ok``, ``skipped``, ``failed``, or None when the input was never recorded."""
        record = self.last.get(input_uri)
        return None if record is None else str(record.get("status"))

    def done(self, input_uri: str, output: str | None, settings: str) -> bool:
        """Whether ``input_uri`` was last transcribed into ``output`` with these ``settings``."""
        record = self.last.get(input_uri)
        return (
            record is not None
            and output is not None
            and record.get("status") in ("ok", "skipped")
            and record.get("output") == output
            and record.get("settings") == settings
        )

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        previous = self.last.get(record["input"])
        if previous is None or str(record.get("at", "")) >= str(previous.get("at", "")):
            if not self.full:
                record = {key: record[key] for key in STATE_FIELDS if record.get(key) is not None}
            self.last[record["input"]] = record


def manifest_folder(output: OutputFolder) -> OutputFolder:
    """The manifest's folder inside an output folder."""
    return output.subfolder(MANIFEST_FOLDER)


def _as_output(folder: Any, conn_id: str | None) -> OutputFolder:
    from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder

    return folder if isinstance(folder, OutputFolder) else OutputFolder(folder, conn_id)


def iter_manifest_records(folder: Any, conn_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Every record of a folder's manifest: the legacy single file first, then the parts in name
    order (which starts with each task's start time); torn lines are skipped.

    :param folder: the output folder (a path, a URI, an ``ObjectStoragePath`` or an OutputFolder).
    :param conn_id: the storage connection for a URI that names none.
    """
    output = _as_output(folder, conn_id)
    parts = manifest_folder(output)
    names = sorted(name for name in parts.names() if _PART.match(name))
    if output.local is not None:  # line by line: a task's part of a large batch is tens of MB
        yield from _parse(output.iter_lines(LEGACY_MANIFEST_NAME))
        for name in names:
            yield from _parse(parts.iter_lines(name))
        return
    legacy = output.read_bytes(LEGACY_MANIFEST_NAME)
    if legacy is not None:
        yield from _parse(legacy.split(b"\n"))
    for start in range(0, len(names), _READ_AT_ONCE):
        batch = names[start : start + _READ_AT_ONCE]
        fetched = parts.read_many(batch)
        for name in batch:
            if name in fetched:
                yield from _parse(fetched[name].split(b"\n"))


def read_manifest_state(
    folder: Any, conn_id: str | None = None, *, full: bool = False, only: Container[str] | None = None
) -> BatchState:
    """The last state of every input recorded in ``folder``'s manifest, over all its parts.

    One listing and one read per part (concurrent on object stores); memory holds one small
    record per input (about 0.5 KB). Use it to see what a batch has done, e.g.
    ``read_manifest_state("s3://transcripts/2026-11-24").status("s3://calls/a.wav")``.

    :param folder: the output folder (a path, a URI, an ``ObjectStoragePath`` or an OutputFolder).
    :param conn_id: the storage connection for a URI that names none.
    :param full: keep whole records (pieces, attempts, bytes, ...), not only :data:`STATE_FIELDS`.
    :param only: keep only the records of these inputs (a shard's own, out of every shard's parts).
    """
    output = _as_output(folder, conn_id)
    state = BatchState(full=full)
    state.parts = int(output.read_bytes(LEGACY_MANIFEST_NAME) is not None) + sum(
        1 for name in manifest_folder(output).names() if _PART.match(name)
    )
    for record in iter_manifest_records(output):
        if only is None or record["input"] in only:
            state.add(record)
        else:
            state.records += 1
    return state


def read_manifest_records(folder: Any, conn_id: str | None = None) -> list[dict[str, Any]]:
    """Every record of ``folder``'s manifest, in the order :func:`iter_manifest_records` gives."""
    return list(iter_manifest_records(folder, conn_id))


def _task_key(run_id: str | None) -> str:
    now = time.time()
    started = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id or "run")[:60].strip("._") or "run"
    return f"{started}-{run}-{secrets.token_hex(4)}"


class ManifestWriter:
    """This task's part of a folder's manifest.

    Local folders: one part file, appended and fsynced per record. Object stores: records are
    buffered and written as a new part object every ``flush_records`` records or ``flush_seconds``
    seconds (a timer flushes a quiet batch too) and on :meth:`close`, so each record is uploaded
    once. A failure raises :class:`~.outputs.OutputStorageError`; records not yet written stay
    buffered for the next flush.

    :param output: the output folder.
    :param run_id: the Airflow run id, for readable part names.
    :param flush_records: records per part object on an object store.
    :param flush_seconds: longest time a record waits in the buffer on an object store.
    """

    def __init__(
        self,
        output: OutputFolder,
        run_id: str | None = None,
        *,
        flush_records: int = FLUSH_RECORDS,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.folder = manifest_folder(output)
        self.key = _task_key(run_id)
        self.flush_records = max(1, flush_records)
        self.flush_seconds = flush_seconds
        self.written = 0
        self._pending: list[bytes] = []
        self._seq = 0
        self._last_flush = time.monotonic()
        self._fd: int | None = None
        self._torn = False
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._timer: threading.Thread | None = None

    @property
    def uri(self) -> str:
        """The manifest folder (every task's parts)."""
        return self.folder.uri

    @property
    def local(self) -> bool:
        return self.folder.local is not None

    def part_name(self, seq: int | None = None) -> str:
        """The name of this task's part file (local) or of its next part object."""
        if self.local:
            return f"part-{self.key}.jsonl"
        return f"part-{self.key}-{self._seq if seq is None else seq:06d}.jsonl"

    @property
    def part_uri(self) -> str:
        """This task's part: the file (local), or the prefix of its part objects."""
        if self.local:
            return self.folder.target(self.part_name())
        return f"{self.folder.uri.rstrip('/')}/part-{self.key}-*.jsonl"

    def open(self) -> None:
        """Create the manifest folder (and start the flush timer on an object store)."""
        self.folder.prepare()
        if not self.local and self.flush_seconds > 0 and self._timer is None:
            self._timer = threading.Thread(target=self._tick, name="kubeai-manifest", daemon=True)
            self._timer.start()

    @property
    def pending(self) -> int:
        """Records buffered and not yet written."""
        return len(self._pending)

    def append(self, line: str) -> None:
        """Record one line (a :meth:`FileResult.to_json`).

        :raises OutputStorageError: it could not be written (on an object store: the flush it
            triggered failed; the line stays buffered).
        """
        data = line.encode("ascii", "backslashreplace") + b"\n"
        with self._lock:
            if self.local:
                self._append_local(data)
                return
            self._pending.append(data)
            if len(self._pending) >= self.flush_records or (
                time.monotonic() - self._last_flush >= self.flush_seconds
            ):
                self._flush_locked()

    def append_many(self, lines: list[str]) -> None:
        """Record many lines at once (one write and one fsync on a local folder)."""
        if not lines:
            return
        data = b"".join(line.encode("ascii", "backslashreplace") + b"\n" for line in lines)
        with self._lock:
            if self.local:
                self._append_local(data, len(lines))
                return
            self._pending.append(data)
            self._flush_locked()

    def _append_local(self, data: bytes, count: int = 1) -> None:
        if self._fd is None:
            self._fd = self.folder.open_append(self.part_name())
        with self.folder.guard("append to", self.part_uri):
            # A line a failed write cut short is ended first: the next record never glues onto it.
            view = memoryview((b"\n" if self._torn else b"") + data)
            self._torn = True
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
            self._torn = False
            self.written += count

    def flush(self) -> None:
        """Write what is buffered (a new part object); nothing to do on a local folder."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        self.folder.write(self.part_name(), b"".join(self._pending))
        self.written += len(self._pending)
        self._pending.clear()
        self._seq += 1

    def close(self) -> None:
        """Flush and stop; safe to call twice.

        :raises OutputStorageError: the last flush failed, retries included (the records stay in
            :attr:`pending`).
        """
        from airflow_provider_kubeai_speech.transcription.outputs import OutputStorageError

        self._closed.set()
        if self._timer is not None:
            self._timer.join(timeout=5)
            self._timer = None
        try:
            for delay in (*CLOSE_RETRY_DELAYS, None):
                try:
                    self.flush()
                    break
                except OutputStorageError:
                    if delay is None or not self._pending:
                        raise
                    time.sleep(delay)  # a short outage should not cost the last records
        finally:
            with self._lock:
                if self._fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(self._fd)
                    self._fd = None

    def _tick(self) -> None:
        from airflow_provider_kubeai_speech.transcription.outputs import OutputStorageError

        while not self._closed.wait(self.flush_seconds):
            with self._lock:
                if self._pending and time.monotonic() - self._last_flush >= self.flush_seconds:
                    with contextlib.suppress(OutputStorageError):  # remembered in the folder's failure
                        self._flush_locked()
