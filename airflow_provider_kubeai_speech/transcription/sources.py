"""Audio inputs: paths, globs, folders and URIs resolved to a list, each checked before any upload.

Local paths are read with the standard library; anything with a scheme goes through Airflow's
``ObjectStoragePath`` (s3://, gs://, abfs://, file://, ...), imported only when needed.
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".m4a", ".mp4", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mka", ".mkv"}
)
_GLOB_CHARS = set("*?[")


@dataclass
class AudioInput:
    """One recording to transcribe.

    :param uri: where it is (a local path or a URI), as given or as found by a glob.
    :param name: its file name.
    :param size: bytes, when known.
    :param problem: why it cannot be sent (missing, empty, not audio, ...), or None.
    :param duration: seconds, when probed (only when long recordings are split).
    :param version: what changes when the file's content does (modification time, or the
        store's ETag), so pieces kept from an earlier run of another version are not reused.
    """

    uri: str
    name: str
    size: int | None = None
    problem: str | None = None
    path: Any = field(default=None, repr=False)
    is_dir: bool = False
    duration: float | None = None
    version: str | None = None

    def opener(self) -> Callable[[], BinaryIO]:
        if self.path is not None:
            return lambda: self.path.open("rb")
        return lambda: open(self.uri, "rb")


def _is_uri(value: str) -> bool:
    return "://" in value


def _storage_path(uri: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def resolve_inputs(audio: str | os.PathLike[str] | Iterable[Any]) -> list[AudioInput]:
    """Expand ``audio`` (one path or URI, a glob, a folder, or a list of them) into inputs.

    Problems (a missing file, a glob that matches nothing, an unsupported scheme) become inputs with
    a ``problem``, so a batch reports them per file instead of stopping.
    """
    items = [audio] if isinstance(audio, str | os.PathLike) or hasattr(audio, "protocol") else list(audio)
    resolved: list[AudioInput] = []
    for item in items:
        resolved.extend(_resolve_one(item))
    return resolved


def _resolve_one(item: Any) -> list[AudioInput]:
    if hasattr(item, "protocol") and hasattr(item, "open"):  # an ObjectStoragePath
        return _resolve_remote(str(item), item)
    text = os.fspath(item) if isinstance(item, os.PathLike) else str(item)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if _is_uri(text):
        try:
            path = _storage_path(text)
            path.fs  # noqa: B018 - resolves the filesystem now: an unknown scheme fails here, by name
        except Exception as err:
            scheme = text.split("://", 1)[0]
            return [
                AudioInput(
                    text,
                    text.rsplit("/", 1)[-1],
                    problem=f"unsupported URI scheme {scheme + '://'!r}: {err}. Fix: use a local path or a scheme Airflow's ObjectStoragePath supports (install its fsspec package, e.g. s3fs for s3://).",
                )
            ]
        return _resolve_remote(text, path)
    if _GLOB_CHARS & set(text):
        matches = sorted(globlib.glob(text, recursive=True))
        if not matches:
            return [AudioInput(text, os.path.basename(text), problem=f"the pattern {text!r} matches no file")]
        return [_local(m) for m in matches if not os.path.isdir(m)]
    if os.path.isdir(text):
        found = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(text)
            for name in names
            if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS
        )
        if not found:
            return [
                AudioInput(
                    text,
                    os.path.basename(text.rstrip("/")),
                    problem=f"the folder {text!r} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})",
                )
            ]
        return [_local(path) for path in found]
    return [_local(text)]


def _local(path: str) -> AudioInput:
    item = AudioInput(path, os.path.basename(path))
    try:
        info = os.stat(path)
    except OSError:
        item.problem = f"no such file: {path!r}"
        return item
    item.size, item.version = info.st_size, str(info.st_mtime_ns)
    return item


def _resolve_remote(uri: str, path: Any) -> list[AudioInput]:
    try:
        if _GLOB_CHARS & set(uri.split("://", 1)[1]):
            base, pattern = _split_glob(uri)
            matches = sorted(_storage_path(base).glob(pattern), key=str)
            if not matches:
                return [
                    AudioInput(uri, uri.rsplit("/", 1)[-1], problem=f"the pattern {uri!r} matches no object")
                ]
            found = [_remote(m) for m in matches]
            return [item for item in found if not item.is_dir]
        if path.is_dir():
            found = sorted(
                (p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()), key=str
            )
            if not found:
                return [AudioInput(uri, path.name, problem=f"the folder {uri!r} holds no audio files")]
            return [_remote(p) for p in found]
    except Exception as err:
        return [
            AudioInput(
                uri, uri.rsplit("/", 1)[-1], problem=f"cannot list {uri!r}: {type(err).__name__}: {err}"
            )
        ]
    return [_remote(path)]


def _split_glob(uri: str) -> tuple[str, str]:
    scheme, rest = uri.split("://", 1)
    parts = rest.split("/")
    index = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    return f"{scheme}://{'/'.join(parts[:index])}", "/".join(parts[index:])


def _remote(path: Any) -> AudioInput:
    item = AudioInput(str(path), path.name, path=path)
    try:
        info = path.stat()  # one round trip: size and type together
    except FileNotFoundError:
        item.problem = f"no such object: {str(path)!r}"
        return item
    except Exception:
        return item
    item.size = int(info["size"] if isinstance(info, dict) else info.st_size)
    item.is_dir = (info.get("type") if isinstance(info, dict) else None) == "directory"
    if isinstance(info, dict):
        stamp = next((info[key] for key in _VERSION_KEYS if info.get(key) is not None), None)
        item.version = None if stamp is None else str(stamp)
    return item


#: Where fsspec stores put what changes with an object's content (s3, gcs, azure, local, memory).
_VERSION_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "crc32c",
    "generation",
    "last_modified",
    "LastModified",
    "mtime",
    "created",
)


def sniff_audio(header: bytes) -> str | None:
    """The container format from a file's first bytes, or None when it is not audio we know."""
    if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        return "wav"
    if header[:4] == b"fLaC":
        return "flac"
    if header[:3] == b"ID3" or (
        len(header) > 1 and header[0] == 0xFF and header[1] & 0xE0 == 0xE0 and header[1] & 0x06 != 0
    ):
        return "mp3"
    if len(header) > 1 and header[0] == 0xFF and header[1] & 0xF6 == 0xF0:
        return "aac"
    if header[:4] == b"OggS":
        return "ogg"
    if header[4:8] == b"ftyp":
        return "mp4"
    if header[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    return None


def check_input(item: AudioInput) -> AudioInput:
    """Fill ``problem`` for inputs that cannot be transcribed: missing, empty, unreadable, not audio."""
    if item.problem is not None:
        return item
    if item.path is None and os.path.isdir(item.uri):
        item.problem = f"{item.uri!r} is a folder, not an audio file"
        return item
    if item.size == 0:
        item.problem = f"{item.uri!r} is empty (0 bytes)"
        return item
    try:
        with item.opener()() as handle:
            header = handle.read(16)
    except PermissionError:
        item.problem = f"{item.uri!r} is not readable (permission denied)"
        return item
    except Exception as err:  # OSError, or whatever a storage backend raises
        item.problem = f"{item.uri!r} cannot be read: {type(err).__name__}: {err}"
        return item
    if not header:
        item.problem = f"{item.uri!r} is empty (0 bytes)"
    elif sniff_audio(header) is None:
        item.problem = f"{item.uri!r} is not audio KubeAI can decode (WAV, FLAC, MP3, AAC, OGG/Opus, M4A/MP4, WebM); its first bytes are {header[:8]!r}"
    return item
