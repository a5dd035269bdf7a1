"""The upload's multipart body: requests-toolbelt's streaming encoder over a small audio reader.

requests-toolbelt's ``MultipartEncoder`` streams the body and gives it a Content-Length, but it
sizes a file part by ``__len__``, ``len``, ``fileno`` or ``getvalue``, which an fsspec/s3fs file
has none of (``TypeError: unsupported operand type(s) for -: 'NoneType' and 'int'``), and an error
raised while it reads the file would reach requests as a broken connection. :class:`AudioReader`
is what the encoder reads instead of the file object. It

- tells the encoder the bytes left as ``len`` (from ``seek``/``tell`` or the file's ``size``),
- calls the attempt's deadline check before every read,
- turns an exception raised by the stream's ``read`` (a storage error) into :class:`UploadAborted`,
  which the endpoint client unwraps into the provider's error, and
- closes the stream once its last byte is read.

A stream whose length cannot be known (no ``seek``/``tell``, no ``size``: a pipe, a socket) is
first copied once, in 64 KiB blocks, to a temporary file (``tempfile.SpooledTemporaryFile``: the
first MiB in memory, the rest on disk in ``TMPDIR``), so the encoder has a length and the body a
Content-Length; the deadline and the read errors apply while copying too. Memory does not grow with
the file's size either way, and the source is read once.
"""

from __future__ import annotations

import contextlib
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO

from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

BLOCK = 1 << 16
#: How much of a stream of unknown length is spooled in memory before the spool moves to disk.
SPOOL_IN_MEMORY = 1 << 20


class UploadAborted(Exception):
    """Raised from inside the body while requests sends it, to stop the upload.

    Deliberately not an ``OSError``: urllib3 would take that for a broken connection and requests
    would turn it into a ``ConnectionError``. The endpoint client unwraps ``reason``.

    :param reason: the provider error to raise instead.
    """

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


def remaining_length(stream: Any) -> int | None:
    """Bytes left in ``stream`` from where it stands, or None when that cannot be known cheaply."""
    try:
        seekable = stream.seekable() if hasattr(stream, "seekable") else hasattr(stream, "seek")
        if seekable and hasattr(stream, "tell"):
            here = stream.tell()
            end = stream.seek(0, 2)
            stream.seek(here)
            end = stream.tell() if end is None else end  # seek() of some file objects returns None
            return max(0, int(end) - int(here))
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    size = getattr(stream, "size", None)
    if callable(size):
        try:
            size = size()
        except Exception:
            return None
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        try:
            here = int(stream.tell()) if hasattr(stream, "tell") else 0
        except Exception:
            here = 0
        return max(0, size - here)
    return None


class AudioReader:
    """The audio stream as the encoder reads it: ``len`` bytes left, read in blocks of 64 KiB at most.

    :param stream: a readable binary file object; read once, from where it stands, and closed.
    :param check: called before every read (raises :class:`UploadAborted`, e.g. at the deadline).
    :param read_error: turns an exception raised by ``stream.read`` into the error to raise.
    """

    def __init__(
        self, stream: BinaryIO, *, check: Callable[[], None], read_error: Callable[[BaseException], Exception]
    ) -> None:
        self._stream, self._check, self._read_error = stream, check, read_error
        length = remaining_length(stream)
        if length is None:
            self._stream, length = self._spool(stream)
        self.length = self.len = length

    def _read(self, size: int) -> bytes:
        self._check()
        try:
            return bytes(self._stream.read(size))
        except UploadAborted:
            raise
        except Exception as err:
            raise UploadAborted(self._read_error(err)) from err

    def _spool(self, source: BinaryIO) -> tuple[BinaryIO, int]:
        spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115  (returned open)
        try:
            while block := self._read(BLOCK):
                spool.write(block)
            length = spool.tell()
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        finally:
            self.close()
        return spool, length

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (b"" once ``len`` is 0)."""
        want = min(BLOCK, self.len if size < 0 else size, self.len)
        if want <= 0:
            return b""
        block = self._read(want)
        if not block:  # the encoder would wait for the announced bytes forever
            done = self.length - self.len
            raise UploadAborted(
                self._read_error(
                    EOFError(
                        f"the audio ended after {done} of the {self.length} bytes its size announced "
                        "(it changed while being uploaded?)"
                    )
                )
            )
        self.len -= len(block)
        if self.len <= 0:
            self.close()
        return block

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a read-only stream: nothing to lose
            self._stream.close()


class MultipartUpload(MultipartEncoderMonitor):
    """One body: the form fields, then the audio as a file part, through toolbelt's encoder.

    :param fields: ``(name, value)`` form fields, in order.
    :param file_field: the file part's field name.
    :param filename: the file name sent.
    :param content_type: the file part's Content-Type.
    :param stream, check, read_error: as for :class:`AudioReader`.
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        file_field: str,
        filename: str,
        content_type: str,
        stream: BinaryIO,
        *,
        check: Callable[[], None],
        read_error: Callable[[BaseException], Exception],
    ) -> None:
        self.audio = AudioReader(stream, check=check, read_error=read_error)
        super().__init__(MultipartEncoder([*fields, (file_field, (filename, self.audio, content_type))]))

    @property
    def sent(self) -> int:
        """Bytes of the body read by requests so far."""
        return int(self.bytes_read)

    def close(self) -> None:
        self.audio.close()
