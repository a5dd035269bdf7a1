"""Audio inputs: paths, globs, folders and URIs resolved to a list, each checked before any upload.

Local paths are read with the standard library; anything with a scheme goes through Airflow's
``ObjectStoragePath`` (s3://, gs://, abfs://, file://, ...), imported only when needed.

How a value is read (documented in docs/operators.rst, "How paths and globs are read"):

- a path or URI that exists is that file or folder, whatever characters its name holds
  (``Meeting [final].wav``, ``call?.wav``); only a value that does not exist and holds ``*``, ``?``
  or ``[`` is a glob (``**`` matches any number of folders);
- a folder is read recursively for files with an audio extension; folders that are symbolic links
  *inside* a folder or a glob are not entered (as ``find`` and ``os.walk`` do), so a link loop
  cannot multiply the inputs or keep resolution running; a link given explicitly is followed, and
  linked files are read;
- each recording is listed once, in first-seen order: local files are compared by device and inode
  (the same file through a link or another spelling of its path), remote ones by their URI without
  a connection id.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from airflow_provider_kubeai_speech.transcription.storage import (
    StorageConnectionError,
    conn_id_in_uri,
    describe_storage_error,
    plain_uri,
    resolve_conn_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_provider_kubeai_speech.speech import AudioSource

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".m4a", ".mp4", ".aac", ".ogg", ".oga", ".opus", ".webm", ".mka", ".mkv"}
)
_GLOB_CHARS = set("*?[")

#: Remote recordings are read (uploaded, or decoded into pieces) in blocks of this size, the
#: last ``UPLOAD_BLOCKS_KEPT`` kept (the first, the last, the current): one pass reads each block
#: once, and FFmpeg's look at a container's end and back (Ogg, MP4) costs no second read. (s3fs
#: would otherwise fetch 50 MiB blocks.)
#: Memory: at most ``UPLOAD_BLOCK_SIZE * UPLOAD_BLOCKS_KEPT`` per recording being read.
UPLOAD_BLOCK_SIZE = 2 * 2**20
UPLOAD_BLOCKS_KEPT = 3
#: Probing a container's header reads ahead this much (a WAV header needs 44 bytes; FFmpeg reads
#: what it needs in 32 KiB requests).
PROBE_BLOCK_SIZE = 256 * 2**10
#: Bytes read to recognise a file's format.
HEADER_BYTES = 16


class RemoteOpener:
    """Opens one remote recording straight through its filesystem, for one sequential pass.

    Not through ``ObjectStoragePath.open``: its wrapper records a hook-lineage asset named with the
    connection id on every ``read()`` call (thousands per upload); the operator reports lineage
    itself.

    :param path: the recording's ``ObjectStoragePath``.
    """

    def __init__(self, path: Any) -> None:
        self.path = path

    def __call__(self) -> BinaryIO:
        handle: BinaryIO = self.path.fs.open(
            self.path.path,
            "rb",
            block_size=UPLOAD_BLOCK_SIZE,
            cache_type="blockcache",
            cache_options={"maxblocks": UPLOAD_BLOCKS_KEPT},
        )
        return handle

    def probe(self) -> BinaryIO:
        """The recording opened for reading its header (see :func:`.decode.probe`)."""
        handle: BinaryIO = self.path.fs.open(
            self.path.path, "rb", block_size=PROBE_BLOCK_SIZE, cache_type="readahead"
        )
        return handle

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes, in one ranged read."""
        return bytes(self.path.fs.cat_file(self.path.path, start=0, end=size))


class LocalOpener:
    """Opens one local recording.

    :param path: its path.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> BinaryIO:
        return open(self.path, "rb")

    def head(self, size: int) -> bytes:
        with open(self.path, "rb") as handle:
            return handle.read(size)


def audio_opener(audio: AudioSource, filename: str | None = None) -> tuple[Callable[[], BinaryIO], str]:
    """A function opening a fresh binary stream of ``audio`` (one per attempt), and its file name.

    The one way any :data:`~..speech.AudioSource` is opened: a remote one through
    :class:`RemoteOpener`, a local path through :class:`LocalOpener` (as :meth:`AudioInput.opener`).
    """
    import io

    if isinstance(audio, bytes | bytearray):
        data = bytes(audio)
        return (lambda: io.BytesIO(data)), filename or "audio.wav"
    if callable(audio) and not hasattr(audio, "open"):
        return audio, filename or "audio.wav"
    remote: Any = None
    if isinstance(audio, str) and "://" in audio and not audio.startswith("file://"):
        from airflow_provider_kubeai_speech.transcription.storage import storage_path

        remote = storage_path(audio)  # the URI's connection, else the scheme's default (aws_default)
    elif hasattr(audio, "open") and hasattr(audio, "fs") and not isinstance(audio, str | os.PathLike):
        remote = audio  # an ObjectStoragePath
    if remote is not None:
        return RemoteOpener(remote), filename or str(remote.name)
    if hasattr(audio, "open") and not isinstance(audio, str | os.PathLike):
        return (lambda: audio.open("rb")), filename or str(getattr(audio, "name", "audio.wav"))
    path = str(os.fspath(cast("str | os.PathLike[str]", audio))).removeprefix("file://")
    return LocalOpener(path), filename or os.path.basename(path)


@dataclass
class AudioInput:
    """One recording to transcribe.

    :param uri: where it is (a local path, or a URI without connection id), as given or as found.
    :param name: its file name.
    :param size: bytes, when known.
    :param problem: why it cannot be sent (missing, empty, not audio, ...), or None.
    :param path: the ``ObjectStoragePath`` of a remote recording (it carries the connection).
    :param duration: seconds, when probed (only when long recordings are split).
    :param version: what changes when the file's content does (modification time, or the
        store's ETag), so pieces kept from an earlier run of another version are not reused.
    :param nothing_found: not a recording but the report that a folder or glob found none (an
        empty night, which ``InvokeSpeechOperator(if_no_inputs=...)`` may accept).
    """

    uri: str
    name: str
    size: int | None = None
    problem: str | None = None
    path: Any = field(default=None, repr=False)
    is_dir: bool = False
    duration: float | None = None
    version: str | None = None
    identity: tuple[int, int] | None = field(default=None, repr=False)
    nothing_found: bool = False

    def opener(self) -> RemoteOpener | LocalOpener:
        """A callable that opens the recording for reading (each call opens it anew)."""
        if self.path is not None:
            return RemoteOpener(self.path)
        return LocalOpener(self.uri)

    @property
    def key(self) -> Any:
        """What identifies the recording: a local file's device and inode (the same file through
        any link or spelling of its path; no extra system call, the stat gave them), else its
        absolute path; a remote one's URI without connection id."""
        if self.path is not None:
            return self.uri
        return self.identity if self.identity is not None else os.path.abspath(self.uri)

    @property
    def dataset(self) -> tuple[str, str]:
        """Its OpenLineage dataset: ``(namespace, name)``, ``("file", <absolute path>)`` when local."""
        if self.path is not None:
            return str(self.path.namespace), str(self.path.key)
        return "file", os.path.abspath(self.uri)


def _is_uri(value: str) -> bool:
    return "://" in value


def resolve_inputs(
    audio: str | os.PathLike[str] | Iterable[Any], conn_id: str | None = None
) -> list[AudioInput]:
    """Expand ``audio`` (one path or URI, a glob, a folder, or a list of them) into inputs, each
    recording once, in first-seen order.

    Problems (a missing file, a glob that matches nothing, an unsupported scheme) become inputs with
    a ``problem``, so a batch reports them per file instead of stopping.

    :param audio: what to transcribe.
    :param conn_id: the storage connection for URIs that name none (``audio_conn_id``); an
        ``ObjectStoragePath`` keeps its own.
    """
    items = [audio] if isinstance(audio, str | os.PathLike) or hasattr(audio, "protocol") else list(audio)
    resolved: list[AudioInput] = []
    seen: set[Any] = set()
    connections = _Connections(conn_id)
    for item in items:
        for found in _resolve_one(item, connections):
            key = found.key
            if key not in seen:
                seen.add(key)
                resolved.append(found)
    return resolved


class _Connections:
    """:func:`.storage.storage_path` for many URIs, looking each scheme's connection up once (a
    connection look-up is a round trip to Airflow's API server in a task).

    :param conn_id: ``audio_conn_id``.
    """

    def __init__(self, conn_id: str | None) -> None:
        self.conn_id = conn_id
        self._resolved: dict[tuple[str, str | None], str | None] = {}

    def path(self, uri: str) -> Any:
        from airflow.sdk import ObjectStoragePath

        in_uri = conn_id_in_uri(uri)
        key = (uri.split("://", 1)[0].lower(), in_uri)
        if key not in self._resolved:
            self._resolved[key] = resolve_conn_id(uri, self.conn_id, field="audio_conn_id")
        resolved = self._resolved[key]
        if resolved is None or in_uri is not None:
            return ObjectStoragePath(uri)
        return ObjectStoragePath(uri, conn_id=resolved)


def _resolve_one(item: Any, connections: _Connections) -> list[AudioInput]:
    if hasattr(item, "protocol") and hasattr(item, "open"):  # an ObjectStoragePath
        if item.protocol in ("file", "local"):
            return _resolve_local(str(item.path))
        return _resolve_remote(plain_uri(item), item)
    text = os.fspath(item) if isinstance(item, os.PathLike) else str(item)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if not _is_uri(text):
        return _resolve_local(text)
    try:
        path = connections.path(text)
        path.fs  # noqa: B018 - resolves the filesystem now: an unknown scheme fails here, by name
    except StorageConnectionError:
        raise
    except Exception as err:
        scheme = text.split("://", 1)[0]
        return [
            AudioInput(
                text,
                text.rsplit("/", 1)[-1],
                problem=f"unsupported URI scheme {scheme + '://'!r}: {err}. Fix: use a local path or a scheme Airflow's ObjectStoragePath supports (install its fsspec package, e.g. s3fs for s3://).",
            )
        ]
    return _resolve_remote(plain_uri(path), path)


# -- local --------------------------------------------------------------------------------------


def _resolve_local(text: str) -> list[AudioInput]:
    if os.path.isdir(text):
        found = sorted(_audio_files(text))
        if not found:
            return [
                AudioInput(
                    text,
                    os.path.basename(text.rstrip("/")),
                    problem=f"the folder {text!r} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})",
                    nothing_found=True,
                )
            ]
        return [_local(path) for path in found]
    if os.path.lexists(text) or not (_GLOB_CHARS & set(text)):
        return [_local(text)]
    matches = sorted(local_glob(text))
    if not matches:
        return [
            AudioInput(
                text,
                os.path.basename(text),
                problem=f"the pattern {text!r} matches no file",
                nothing_found=True,
            )
        ]
    return [_local(m) for m in matches]


def _audio_files(folder: str) -> Iterator[str]:
    for root, _, names in os.walk(folder):  # symlinked folders are not entered (followlinks=False)
        for name in names:
            if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                yield os.path.join(root, name)


def local_glob(pattern: str) -> Iterator[str]:
    """The files matching ``pattern`` (``*``, ``?``, ``[...]``, and ``**`` for any number of
    folders), as :func:`glob.glob` with ``recursive=True`` finds them, except that folders that
    are symbolic links are not entered, so link loops cannot repeat or stall the walk."""
    parts = pattern.split(os.sep)
    first_magic = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    base = os.sep.join(parts[:first_magic]) or ("" if not pattern.startswith(os.sep) else os.sep)
    rest = parts[first_magic:]
    matcher = re.compile(_glob_regex(rest))
    recursive = "**" in rest
    top = base or os.curdir
    depth_limit = len(rest) - 1
    for root, dirs, names in os.walk(top):
        relative = os.path.relpath(root, top)
        depth = 0 if relative == os.curdir else relative.count(os.sep) + 1
        if recursive:
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # as glob: '**' skips hidden folders
        elif depth >= depth_limit:
            dirs[:] = []
        prefix = "" if relative == os.curdir else relative + "/"
        for name in names:
            if matcher.fullmatch((prefix + name).replace(os.sep, "/")):
                yield os.path.join(base, prefix, name) if base else os.path.join(prefix, name)


def _glob_regex(parts: list[str]) -> str:
    pieces = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            pieces.append(r"(?:[^/.][^/]*/)*" if not last else r"(?:[^/.][^/]*/)*[^/.][^/]*")
            continue
        pieces.append(_part_regex(part) + ("" if last else "/"))
    return "".join(pieces)


def _part_regex(part: str) -> str:
    out = [r"(?!\.)"] if part[:1] in _GLOB_CHARS else []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            out.append(r"[^/]*")
        elif char == "?":
            out.append(r"[^/]")
        elif (
            char == "["
            and (end := part.find("]", i + 2 if part[i + 1 : i + 2] in ("!", "]") else i + 1)) != -1
        ):
            body = part[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\").replace("^", r"\^") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _local(path: str) -> AudioInput:
    item = AudioInput(path, os.path.basename(path))
    try:
        info = os.stat(path)
    except OSError:
        item.problem = (
            f"no such file: {path!r}"
            if _has_audio_extension(path)
            else f"the folder {path!r} does not exist (no such file or folder)"
        )
        return item
    item.size, item.version = info.st_size, str(info.st_mtime_ns)
    item.identity = (info.st_dev, info.st_ino)
    return item


# -- remote -------------------------------------------------------------------------------------


def _resolve_remote(uri: str, path: Any) -> list[AudioInput]:
    try:
        rest = uri.split("://", 1)[1]
        if _GLOB_CHARS & set(rest) and not path.exists():
            base, pattern = _split_glob(uri)
            listed = path.fs.glob(f"{storage_path_like(path, base).path.rstrip('/')}/{pattern}", detail=True)
            found = _listed(path, listed)
            if not found:
                return [
                    AudioInput(
                        uri,
                        uri.rsplit("/", 1)[-1],
                        problem=f"the pattern {uri!r} matches no object",
                        nothing_found=True,
                    )
                ]
            return found
        # One walk of the prefix: asking is_dir() first made s3fs list it once more (2x the
        # requests on a 100k-object prefix). A key that is an object is one HEAD.
        if not path.is_file():
            listed = path.fs.find(path.path, detail=True)
            if listed or path.is_dir():
                found = [item for item in _listed(path, listed) if _has_audio_extension(item.name)]
                if not found:
                    return [
                        AudioInput(
                            uri,
                            path.name,
                            problem=f"the folder {uri!r} holds no audio files",
                            nothing_found=True,
                        )
                    ]
                return found
    except Exception as err:
        return [
            AudioInput(uri, uri.rsplit("/", 1)[-1], problem=f"cannot list {describe_storage_error(err, uri)}")
        ]
    return [_remote(path)]


def _has_audio_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


@dataclass(frozen=True)
class RemoteObject:
    """One object found by a listing: what an ``ObjectStoragePath`` offers the batch (its
    filesystem, path, connection, lineage names), without building one per object (an
    ``ObjectStoragePath`` costs about 400 µs, which 100 000 objects would turn into minutes).

    :param fs: the listing's filesystem (it carries the connection).
    :param path: the object's path on ``fs`` (``bucket/key``).
    :param protocol: the URI scheme.
    :param conn_id: the connection the filesystem was made from, or None.
    """

    fs: Any
    path: str
    protocol: str
    conn_id: str | None = None

    @property
    def bucket(self) -> str:
        return self.path.lstrip("/").split("/", 1)[0]

    @property
    def key(self) -> str:
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def namespace(self) -> str:
        return f"{self.protocol}://{self.bucket}"

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def uri(self) -> str:
        return f"{self.protocol}://{self.path.lstrip('/')}"


def _listed(parent: Any, listed: dict[str, dict[str, Any]]) -> list[AudioInput]:
    """Inputs for the files of one listing, sorted, from the sizes and versions the listing gave
    (no round trip per object)."""
    found = []
    fs, protocol, conn_id = parent.fs, parent.protocol, getattr(parent, "conn_id", None)
    for name in sorted(listed):
        info = listed[name]
        if info.get("type") == "directory":
            continue
        child = RemoteObject(fs, name, protocol, conn_id)
        found.append(_from_info(AudioInput(child.uri, child.name, path=child), info))
    return found


def storage_path_like(path: Any, uri: str) -> Any:
    """``uri`` as an ``ObjectStoragePath`` reached through the same connection as ``path``."""
    from airflow.sdk import ObjectStoragePath

    conn_id = getattr(path, "conn_id", None)
    return ObjectStoragePath(uri, conn_id=conn_id) if conn_id else ObjectStoragePath(uri)


def _split_glob(uri: str) -> tuple[str, str]:
    scheme, rest = uri.split("://", 1)
    parts = rest.split("/")
    index = next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))
    return f"{scheme}://{'/'.join(parts[:index])}", "/".join(parts[index:])


def _remote(path: Any) -> AudioInput:
    item = AudioInput(plain_uri(path), path.name, path=path)
    try:
        info = path.fs.info(path.path)  # one round trip: size, type and version together
    except FileNotFoundError:
        item.problem = f"no such object: {item.uri!r}"
        return item
    except Exception:
        return item
    return _from_info(item, info)


def _from_info(item: AudioInput, info: dict[str, Any]) -> AudioInput:
    if info.get("size") is not None:
        item.size = int(info["size"])
    item.is_dir = info.get("type") == "directory"
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


def _head(opener: Any, size: int) -> bytes:
    """The first ``size`` bytes: a ranged read where the opener has one, never a whole block."""
    if hasattr(opener, "head"):
        return bytes(opener.head(size))
    with opener() as handle:
        return bytes(handle.read(size))


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
        header = _head(item.opener(), HEADER_BYTES)
    except Exception as err:  # OSError, or whatever a storage backend raises
        if item.path is None and isinstance(err, PermissionError):
            item.problem = f"{item.uri!r} is not readable (permission denied)"
        else:  # s3fs reports an archived object as a PermissionError: the cause says what it is
            item.problem = f"cannot read {describe_storage_error(err, item.uri)}"
        return item
    if not header:
        item.problem = f"{item.uri!r} is empty (0 bytes)"
    elif sniff_audio(header) is None:
        item.problem = f"{item.uri!r} is not audio KubeAI can decode (WAV, FLAC, MP3, AAC, OGG/Opus, M4A/MP4, WebM); its first bytes are {header[:8]!r}"
    return item


def count_inputs(
    audio: str | os.PathLike[str] | Iterable[Any],
    conn_id: str | None = None,
    *,
    missing_is_empty: bool = False,
) -> int:
    """How many recordings ``audio`` names, found as :class:`.InvokeSpeechOperator` finds them
    (nothing is read but listings): a cheap check before serving a Model, so a night without
    recordings neither serves nor scales anything up. An empty folder or a glob matching nothing
    counts 0; a missing file or folder counts 1 (the transcription then fails and says so).

    :param audio: what ``InvokeSpeechOperator(audio=...)`` would be given.
    :param conn_id: its ``audio_conn_id``.
    :param missing_is_empty: a missing folder (a name without an audio extension that does not
        exist: a day's folder never created, an object-store prefix nothing was written under)
        counts 0 too.
    """
    count = 0
    for item in resolve_inputs(audio, conn_id):
        missing = (
            item.problem is not None
            and not _has_audio_extension(item.name)
            and (
                item.problem.startswith("no such object")
                if item.path is not None
                else not os.path.lexists(item.uri)
            )
        )
        count += not item.nothing_found and not (missing_is_empty and missing)
    return count
