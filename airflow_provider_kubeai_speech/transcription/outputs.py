"""Where transcripts go: safe names confined to the output folder, and atomic writes.

A local folder gets a temporary file, fsync and rename, so a killed run never leaves a partial
transcript under its final name. An object store gets one PUT of the whole transcript (atomic
per object).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.transcription.formats import EXTENSIONS
from airflow_provider_kubeai_speech.transcription.storage import storage_path

if TYPE_CHECKING:
    from collections.abc import Sequence

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
    """One output file name per input; inputs whose names would collide get a hash of their URI.

    The result for an input depends only on the whole list of inputs, never on their order, so a
    resumed run finds the files the first run wrote.
    """
    ext = EXTENSIONS[response_format]
    stems = [safe_stem(uri.rsplit("/", 1)[-1]) for uri in uris]
    counts = Counter(stem.casefold() for stem in stems)
    names = []
    for uri, stem in zip(uris, stems, strict=True):
        if counts[stem.casefold()] > 1:
            stem = f"{stem}--{hashlib.sha256(uri.encode()).hexdigest()[:8]}"
        names.append(f"{stem}.{ext}")
    return names


class OutputFolder:
    """The output folder, local or an ObjectStoragePath.

    :param location: a local path or a URI.
    :param conn_id: the storage connection for a URI that names none (``output_conn_id``).
    """

    def __init__(self, location: str | os.PathLike[str] | Any, conn_id: str | None = None) -> None:
        text = str(location)
        self.uri = text
        self.local: str | None = None
        self.remote: Any = None
        if hasattr(location, "protocol") and getattr(location, "protocol", "file") not in ("file", "local"):
            self.remote = location
        elif "://" in text and not text.startswith("file://"):
            self.remote = storage_path(text, conn_id, field="output_conn_id")
        else:
            self.local = os.path.abspath(text.removeprefix("file://"))

    def subfolder(self, name: str) -> OutputFolder:
        """A folder inside this one (``name`` is checked like any output name)."""
        target = self.target(name)
        return OutputFolder(target if self.local is not None else self.remote / name)

    def prepare(self) -> None:
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
        return f"{str(self.remote).rstrip('/')}/{name}"

    def exists(self, name: str) -> bool:
        if self.local is not None:
            return os.path.isfile(self.target(name))
        return bool((self.remote / name).exists())

    def write(self, name: str, content: str) -> str:
        """Write atomically; returns the location written."""
        target = self.target(name)
        data = content.encode("utf-8")
        if self.local is None:
            with (self.remote / name).open("wb") as handle:
                handle.write(data)
            return target
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=self.local)
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
        return target

    def read(self, name: str) -> str | None:
        """The text of ``name``, or None when it does not exist."""
        try:
            if self.local is not None:
                with open(self.target(name), encoding="utf-8") as handle:
                    return handle.read()
            return str((self.remote / name).read_text())
        except FileNotFoundError:
            return None

    def remove_all(self) -> None:
        """Delete this folder and everything in it."""
        if self.local is not None:
            import shutil

            shutil.rmtree(self.local, ignore_errors=True)
        elif self.remote.exists():
            self.remote.fs.rm(self.remote.path, recursive=True)

    def append_line(self, name: str, line: str) -> None:
        """Append one line (the results manifest); durable on local disks."""
        if self.local is None:
            existing = (self.remote / name).read_text() if (self.remote / name).exists() else ""
            with (self.remote / name).open("w") as handle:
                handle.write(existing + line + "\n")
            return
        with open(self.target(name), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def remove_partials(self) -> int:
        """Delete temporary files a killed run left behind; returns how many."""
        if self.local is None:
            return 0
        removed = 0
        for entry in os.scandir(self.local):
            if entry.name.startswith(".") and entry.name.endswith(".partial"):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
        return removed
