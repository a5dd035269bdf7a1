"""A multipart/form-data body streamed from any readable binary file object, in one pass.

requests-toolbelt's encoder must know the file's length from ``__len__``, ``len``, ``fileno`` or
``getvalue``, which an fsspec/s3fs file has none of. Here the length comes from ``seek``/``tell``
or a ``size`` attribute when the object has them (then the body has a Content-Length), and the
body is sent with chunked transfer encoding when it has neither. The file is read in blocks as
the socket takes them, so memory does not grow with its size.

Part headers are rendered by urllib3 (``RequestField``), as requests itself does for ``files=``.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from urllib3.fields import RequestField

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

BLOCK = 1 << 16


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


class MultipartBody:
    """One multipart body: form fields, then one file part streamed from ``stream``.

    requests sends it with a Content-Length when :attr:`length` is known (``__len__``), chunked
    otherwise (``__iter__``); http.client reads it through :meth:`read`.

    :param fields: ``(name, value)`` form fields, in order.
    :param file_field: the file part's field name.
    :param filename: the file name sent.
    :param content_type: the file part's Content-Type.
    :param stream: a readable binary file object; read once, from where it stands, and closed.
    :param what: how to name the audio in errors.
    :param check: called before every block is read (raises to stop the upload, e.g. at a deadline).
    :param read_error: turns an exception raised by ``stream.read`` into the error to raise.
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        file_field: str,
        filename: str,
        content_type: str,
        stream: BinaryIO,
        *,
        check: Callable[[], None] | None = None,
        read_error: Callable[[BaseException], Exception],
    ) -> None:
        self.boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        head = b"".join(self._part(name, value.encode("utf-8")) for name, value in fields)
        part = RequestField(name=file_field, data=b"", filename=filename)
        part.make_multipart(content_type=content_type)
        self._head = head + f"--{self.boundary}\r\n".encode() + part.render_headers().encode("utf-8")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._stream = stream
        self._check = check
        self._read_error = read_error
        self.file_length = remaining_length(stream)
        self.length = (
            None if self.file_length is None else len(self._head) + self.file_length + len(self._tail)
        )
        self.file_bytes = 0
        self.sent = 0
        self._blocks = self._generate()
        self._buffer = b""

    def _part(self, name: str, value: bytes) -> bytes:
        part = RequestField(name=name, data=value)
        part.make_multipart()
        return f"--{self.boundary}\r\n".encode() + part.render_headers().encode("utf-8") + value + b"\r\n"

    def __len__(self) -> int:
        return self.length or 0

    def __bool__(self) -> bool:
        return True  # an unknown length is not an empty body

    def __iter__(self) -> Iterator[bytes]:
        return self._blocks

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the body (b"" at its end)."""
        while size < 0 or len(self._buffer) < size:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.sent += len(out)
        return out

    def _generate(self) -> Iterator[bytes]:
        yield self._head
        try:
            while True:
                if self._check is not None:
                    self._check()
                want = BLOCK if self.file_length is None else min(BLOCK, self.file_length - self.file_bytes)
                if want <= 0:
                    break
                try:
                    block = self._stream.read(want)
                except UploadAborted:
                    raise
                except Exception as err:
                    raise UploadAborted(self._read_error(err)) from err
                if not block:
                    break
                self.file_bytes += len(block)
                yield bytes(block)
            if self.file_length is not None and self.file_bytes != self.file_length:
                raise UploadAborted(
                    self._read_error(
                        EOFError(
                            f"the audio ended after {self.file_bytes} of the {self.file_length} bytes its size "
                            "announced (it changed while being uploaded?)"
                        )
                    )
                )
        finally:
            self.close()
        yield self._tail

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # closing a read-only stream: nothing to lose
                close()
