"""Where transcripts go: safe names confined to the output folder, and atomic writes.

A local folder gets a temporary file, fsync and rename, so a killed run never leaves a partial
transcript under its final name. The temporary file's name carries its owner (pid and host), so
a task removes only partial files whose owner is gone (or that are older than an hour), never those
of another task writing into the same folder. An object store gets one PUT of the whole transcript
(atomic per object). Files get the usual mode (``0666`` less the umask).

A failure of the output itself (disk full, read-only, store unreachable) raises
:class:`OutputStorageError`, and is remembered by the folder and its subfolders (``failure``), so
the batch stops sending files whose transcripts could not be kept.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import time
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.exceptions import OutputStorageError as OutputStorageError
from airflow_provider_kubeai_speech.transcription.formats import EXTENSIONS
from airflow_provider_kubeai_speech.transcription.storage import (
    plain_uri,
    storage_error_reason,
    storage_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

MAX_NAME_BYTES = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_stem(name: str) -> str:
    """A file stem that cannot leave its folder: no separators, no '..', no control characters."""
    stem = os.path.splitext(os.path.basename(name.replace("\\", "/")))[0]
    stem = unicodedata.normalize("NFC", stem)
    stem = _UNSAFE.sub("_", stem).strip(" .")
    stem = re.sub(r"\.{2,}", ".", stem)
    if not stem:
        stem = "audio"
    encoded = stem.encode()
    if len(encoded) > MAX_NAME_BYTES:
        digest = hashlib.sha256(encoded).hexdigest()[:8]
        stem = encoded[: MAX_NAME_BYTES - 9].decode("utf-8", "ignore") + "-" + digest
    return stem


def output_names(uris: Sequence[str], response_format: str) -> list[str]:
    """One output file name per input, unique (ignoring case) by construction.

    An input keeps its own stem when no other input's stem equals it ignoring case; the others get
    ``<stem>--<hash of their URI>``, the hash as long as their group needs to tell them apart. A
    stem that equals one of those hashed names (a file literally named ``a--<hash>.wav``) is
    hashed too, until no name is taken twice. The name of an input depends only on the set of
    inputs, never on their order, so a resumed run finds the files the first run wrote.
    """
    ext = EXTENSIONS[response_format]
    stems = {uri: safe_stem(uri.rsplit("/", 1)[-1]) for uri in dict.fromkeys(uris)}
    counts = Counter(stem.casefold() for stem in stems.values())
    plain = {uri for uri, stem in stems.items() if counts[stem.casefold()] == 1}
    while True:
        hashed = _hashed_names(stems, [uri for uri in stems if uri not in plain])
        taken = {name.casefold() for name in hashed.values()}
        clashing = {uri for uri in plain if stems[uri].casefold() in taken}
        if not clashing:
            break
        plain -= clashing
    return [f"{stems[uri] if uri in plain else hashed[uri]}.{ext}" for uri in uris]


#: A hashed name's stem is cut to this many bytes, so the name stays below 255 bytes.
_HASHED_STEM_BYTES = 180


def _hashed_names(stems: dict[str, str], uris: list[str]) -> dict[str, str]:
    """``<stem>--<hex>`` for each URI. The hex has no ``-``, so a name splits back into its stem
    and hex at its last ``--``: names of different stems never meet, and within a stem the hex
    prefixes are made long enough to differ."""
    groups: dict[str, list[str]] = {}
    for uri in uris:
        stem = _cut(stems[uri], _HASHED_STEM_BYTES)
        groups.setdefault(stem.casefold(), []).append(uri)
    names = {}
    for members in groups.values():
        digests = {uri: hashlib.sha256(uri.encode()).hexdigest() for uri in members}
        width = 8
        while width < 64 and len({digest[:width] for digest in digests.values()}) < len(members):
            width += 8
        for uri in members:
            names[uri] = f"{_cut(stems[uri], _HASHED_STEM_BYTES)}--{digests[uri][:width]}"
    return names


def _cut(text: str, limit: int) -> str:
    encoded = text.encode()
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


#: Errors that concern one name, not the folder: the batch goes on with the other files.
_PER_NAME_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.EISDIR, errno.EINVAL})
#: A partial file of an owner this host cannot check is removed after this many seconds.
STALE_PARTIAL_SECONDS = 3600.0
_PARTIAL_SUFFIX = ".partial"
_PARTIAL_NAME_BYTES = 96


class _Health:
    """The first fatal failure of an output folder, shared with its subfolders."""

    def __init__(self) -> None:
        self.failure: OutputStorageError | None = None


def _host() -> str:
    # The whole name, hashed: pods of one DAG share long name prefixes and have small pids
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:16]


def _owner() -> str:
    return f"{os.getpid()}@{_host()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user
        return True
    return True


def partial_owner(name: str) -> tuple[int, str] | None:
    """The (pid, host) a partial file's name records, or None (another version's, or not ours)."""
    if not (name.startswith(".") and name.endswith(_PARTIAL_SUFFIX)):
        return None
    owner = name[: -len(_PARTIAL_SUFFIX)].rsplit(".", 1)[-1]
    pid, at, host = owner.partition("@")
    if not at or not pid.isdigit() or not host:
        return None
    return int(pid), host


class OutputFolder:
    """The output folder, local or an ObjectStoragePath.

    :param location: a local path, a URI (``s3://bucket/key`` or ``s3://CONN@bucket/key``) or an
        ``ObjectStoragePath``.
    :param conn_id: the storage connection for a URI that names none (the operator's
        ``output_conn_id``); see :func:`~.storage.resolve_conn_id`.
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | Any,
        conn_id: str | None = None,
        *,
        _health: _Health | None = None,
    ) -> None:
        text = str(location)
        self.local: str | None = None
        self.remote: Any = None
        self._health = _health or _Health()
        if hasattr(location, "protocol") and getattr(location, "protocol", "file") not in ("file", "local"):
            self.remote = location
        elif "://" in text and not text.startswith("file://"):
            self.remote = storage_path(text, conn_id, field="output_conn_id")
        else:
            self.local = os.path.abspath(text.removeprefix("file://"))
        self.uri = plain_uri(self.remote) if self.remote is not None else text

    @property
    def failure(self) -> OutputStorageError | None:
        """The first fatal failure of this folder (or of its parent or subfolders), if any."""
        return self._health.failure

    def subfolder(self, name: str) -> OutputFolder:
        """A folder inside this one (``name`` is checked like any output name)."""
        target = self.target(name)
        location = target if self.local is not None else self.remote / name
        return OutputFolder(location, _health=self._health)

    @contextlib.contextmanager
    def guard(self, action: str, location: str) -> Iterator[None]:
        """Turn a storage library's error into an :class:`OutputStorageError` naming the location,
        the cause and the fix; a fatal one is remembered in :attr:`failure`."""
        try:
            yield
        except OutputStorageError:
            raise
        except Exception as err:
            fatal = not (isinstance(err, OSError) and err.errno in _PER_NAME_ERRNOS)
            fix = (
                "Fix: free space, make the output writable or reachable, then rerun: "
                "finished transcripts are kept and skip_existing sends only the rest."
                if fatal
                else "Fix: rename or remove what is in the way."
            )
            failure = OutputStorageError(
                f"cannot {action} the output {location!r}: {storage_error_reason(err)}. {fix}",
                location=location,
                fatal=fatal,
            )
            if fatal and self._health.failure is None:
                self._health.failure = failure
            raise failure from err

    def prepare(self) -> None:
        with self.guard("create", self.uri):
            if self.local is not None:
                os.makedirs(self.local, exist_ok=True)
            else:
                self.remote.mkdir(parents=True, exist_ok=True)

    def target(self, name: str) -> str:
        """The full location of ``name``, refusing anything that would leave the folder."""
        if name != os.path.basename(name) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise ValueError(f"output name {name!r} would leave the output folder")
        if self.local is not None:
            full = os.path.realpath(os.path.join(self.local, name))
            if os.path.dirname(full) != os.path.realpath(self.local):
                raise ValueError(f"output name {name!r} resolves outside {self.local!r}")
            return full
        return f"{self.uri.rstrip('/')}/{name}"

    def exists(self, name: str) -> bool:
        with self.guard("read", self.target(name)):
            if self.local is not None:
                return os.path.isfile(self.target(name))
            return bool((self.remote / name).exists())

    def names(self) -> set[str]:
        """The names of the files in this folder, in one listing (empty when it does not exist)."""
        with self.guard("list", self.uri):
            if self.local is not None:
                try:
                    with os.scandir(self.local) as entries:
                        return {entry.name for entry in entries if entry.is_file()}
                except FileNotFoundError:
                    return set()
            if not self.remote.exists():
                return set()
            listed = self.remote.fs.ls(self.remote.path, detail=False)
            return {str(path).rstrip("/").rsplit("/", 1)[-1] for path in listed}

    def write(self, name: str, content: str | bytes) -> str:
        """Write atomically; returns the location written.

        :raises OutputStorageError: the folder cannot be written (``fatal``), or only this name.
        :raises ValueError: ``name`` would leave the folder.
        """
        target = self.target(name)
        data = content.encode("utf-8") if isinstance(content, str) else content
        with self.guard("write", target):
            if self.local is None:
                with (self.remote / name).open("wb") as handle:
                    handle.write(data)
                return target
            self._write_local(name, target, data)
        return target

    def _write_local(self, name: str, target: str, data: bytes) -> None:
        assert self.local is not None
        short = name.encode()[:_PARTIAL_NAME_BYTES].decode("utf-8", "ignore")
        tmp = os.path.join(self.local, f".{short}.{secrets.token_hex(4)}.{_owner()}{_PARTIAL_SUFFIX}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def open_append(self, name: str) -> int:
        """A local file's descriptor, opened for appending (created with the usual mode)."""
        assert self.local is not None
        target = self.target(name)
        with self.guard("write", target):
            return os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666
            )

    def read(self, name: str) -> str | None:
        """The text of ``name``, or None when it does not exist."""
        data = self.read_bytes(name)
        return None if data is None else data.decode("utf-8")

    def read_bytes(self, name: str) -> bytes | None:
        """The bytes of ``name``, or None when it does not exist."""
        with self.guard("read", self.target(name)):
            try:
                if self.local is not None:
                    with open(self.target(name), "rb") as handle:
                        return handle.read()
                return bytes((self.remote / name).read_bytes())
            except FileNotFoundError:
                return None

    def iter_lines(self, name: str) -> Iterator[bytes]:
        """The lines of a local file, read as they are used (nothing when it does not exist)."""
        assert self.local is not None
        target = self.target(name)
        with self.guard("read", target):
            try:
                handle = open(target, "rb")  # noqa: SIM115 - closed below, after the last line
            except FileNotFoundError:
                return
        with handle:
            while True:
                with self.guard("read", target):
                    line = handle.readline()
                if not line:
                    return
                yield line

    def read_many(self, names: list[str]) -> dict[str, bytes]:
        """Several files at once (an object store fetches them concurrently); missing ones are left out."""
        if not names:
            return {}
        if self.local is not None:
            found = {name: self.read_bytes(name) for name in names}
            return {name: data for name, data in found.items() if data is not None}
        paths = {f"{str(self.remote.path).rstrip('/')}/{name}": name for name in names}
        with self.guard("read", self.uri):
            fetched = self.remote.fs.cat(list(paths), on_error="omit")
        return {paths[path]: data for path, data in fetched.items() if path in paths}

    def remove_all(self) -> None:
        """Delete this folder and everything in it."""
        with self.guard("remove", self.uri):
            if self.local is not None:
                import shutil

                shutil.rmtree(self.local, ignore_errors=True)
            elif self.remote.exists():
                self.remote.fs.rm(self.remote.path, recursive=True)

    def remove_partials(self, stale_after: float = STALE_PARTIAL_SECONDS) -> int:
        """Delete temporary files that killed runs left behind; returns how many.

        Only partial files whose owner is gone are removed: a process of this host that no longer
        runs, or any owner when the file is older than ``stale_after`` seconds (the owner's host
        cannot be asked, and no write takes that long). Another task's live write is never touched.
        """
        if self.local is None:
            return 0
        removed = 0
        host, now = _host(), time.time()
        try:
            entries = list(os.scandir(self.local))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not (entry.name.startswith(".") and entry.name.endswith(_PARTIAL_SUFFIX)):
                continue
            owner = partial_owner(entry.name)
            try:
                stale = now - entry.stat().st_mtime > stale_after
            except OSError:
                continue  # already gone: its owner renamed or removed it
            gone = (
                owner is not None
                and owner[1] == host
                and owner[0] != os.getpid()
                and not _pid_alive(owner[0])
            )
            if stale or gone:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
        return removed
