"""The upload body: requests-toolbelt's encoder over the provider's audio reader."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests

from airflow_provider_kubeai_speech.hooks.multipart import BLOCK, MultipartUpload, UploadAborted

DATA = bytes(range(256)) * 4000  # about 1 MiB: several blocks


class Pipe:
    """``read`` and ``close`` only: no seek/tell, no size, no fileno."""

    def __init__(self, data: bytes, *, fail_at: int | None = None) -> None:
        self.stream, self.fail_at = io.BytesIO(data), fail_at
        self.sizes: list[int] = []
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.fail_at is not None and self.stream.tell() >= self.fail_at:
            raise RuntimeError("SlowDown")
        self.sizes.append(size)
        return self.stream.read(size)

    def close(self) -> None:
        self.closed = True


class Shrunk(Pipe):
    """Announces more bytes than it has (an object overwritten while being read)."""

    size = len(DATA) + 10


def upload(stream: Any, checks: list[int] | None = None) -> MultipartUpload:
    return MultipartUpload(
        [("model", "whisper"), ("language", "en")],
        "file",
        "call.wav",
        "audio/wav",
        stream,
        check=lambda: checks.append(1) if checks is not None else None,
        read_error=lambda err: ValueError(f"read failed: {type(err).__name__}: {err}"),
    )


def body_of(body: MultipartUpload) -> bytes:
    blocks = []
    while block := body.read(16384):
        blocks.append(block)
    return b"".join(blocks)


def parse(body: bytes, content_type: str) -> dict[str, bytes]:
    from python_multipart import parse_form

    parts: dict[str, bytes] = {}
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    parse_form(
        headers,
        io.BytesIO(body),
        lambda field: parts.__setitem__(field.field_name.decode(), field.value or b""),
        lambda file: parts.__setitem__(
            file.field_name.decode(), (file.file_object.seek(0), file.file_object.read())[1]
        ),
    )
    return parts


@pytest.mark.parametrize("make", [io.BytesIO, Pipe], ids=["seekable", "no length (spooled)"])
def test_the_body_has_a_content_length_and_the_audio_read_once(make: Any) -> None:
    stream = make(DATA)
    checks: list[int] = []
    body = upload(stream, checks)
    prepared = requests.Request("POST", "http://h/", data=body).prepare()
    assert prepared.headers["Content-Length"] == str(body.len) and "Transfer-Encoding" not in prepared.headers
    sent = body_of(body)
    assert len(sent) == body.len == body.sent and stream.closed
    assert parse(sent, body.content_type) == {"model": b"whisper", "language": b"en", "file": DATA}
    assert len(checks) >= len(DATA) // BLOCK  # the deadline is checked before every read
    if isinstance(stream, Pipe):
        assert max(stream.sizes) <= BLOCK and stream.stream.tell() == len(DATA)


def test_the_stream_is_read_from_where_it_stands() -> None:
    stream = io.BytesIO(b"skipped" + DATA)
    stream.seek(7)
    body = upload(stream)
    assert parse(body_of(body), body.content_type)["file"] == DATA


def test_a_read_error_aborts_with_the_providers_error() -> None:
    stream = Pipe(DATA, fail_at=3 * BLOCK)
    with pytest.raises(UploadAborted) as err:  # spooled: raised while the body is built
        upload(stream)
    assert isinstance(err.value.reason, ValueError) and "RuntimeError: SlowDown" in str(err.value.reason)
    assert stream.closed and not isinstance(err.value, OSError)


def test_a_stream_shorter_than_announced_aborts() -> None:
    body = upload(Shrunk(DATA))
    with pytest.raises(UploadAborted, match=r"ended after 1024000 of the 1024010 bytes"):
        body_of(body)


def test_the_deadline_stops_the_upload() -> None:
    def check() -> None:
        raise UploadAborted(TimeoutError("deadline"))

    body = MultipartUpload(
        [], "file", "a.wav", "audio/wav", io.BytesIO(DATA), check=check, read_error=ValueError
    )
    with pytest.raises(UploadAborted, match="deadline"):
        body_of(body)
