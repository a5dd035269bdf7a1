"""What checking, probing and uploading a remote recording reads (issue 15, item 3).

A filesystem that behaves like s3fs where it matters (50 MiB default blocks read ahead, ranged
``cat_file``) counts every byte it serves. Targets: the check reads its 16 bytes, a WAV probe its
header, the upload one pass; checks + probe + upload of a 300 MB object read at most 1.1 times its
size, with memory growth at most 64 MiB.
"""

from __future__ import annotations

import struct
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from airflow_provider_kubeai_speech.transcription.sources import check_input, resolve_inputs

MiB = 2**20


def wav_header(data_bytes: int, rate: int = 16000) -> bytes:
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class Synthetic:
    """An object's content without holding it: a header, then zeros."""

    def __init__(self, header: bytes, size: int) -> None:
        self.header, self.size = header, size

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        head = self.header[start:end] if start < len(self.header) else b""
        return head + bytes(max(0, end - max(start, len(self.header))))


class OnDisk:
    def __init__(self, path: Path) -> None:
        self.path, self.size = path, path.stat().st_size

    def read(self, start: int, end: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            return handle.read(max(0, min(end, self.size) - start))


class CountingFile(AbstractBufferedFile):
    def _fetch_range(self, start: int, end: int) -> bytes:
        data: bytes = self.fs.objects[self.path].read(start, end)
        self.fs.count(len(data))
        return data


class CountingFS(AbstractFileSystem):
    """s3fs's read behaviour: 50 MiB blocks read ahead by default, ``cat_file`` one ranged GET."""

    protocol = "countfs"
    root_marker = ""
    # Shared by every instance, as MemoryFileSystem's store is (ObjectStoragePath makes its own).
    objects: dict[str, Any] = {}
    bytes_read = 0
    _lock = threading.Lock()

    @classmethod
    def count(cls, n: int) -> None:
        with cls._lock:
            CountingFS.bytes_read += n

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        return str(path).removeprefix("countfs://").strip("/")

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if path in self.objects:
            return {"name": path, "size": self.objects[path].size, "type": "file", "ETag": '"v1"'}
        if any(key.startswith(path + "/") for key in self.objects):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        names = sorted(
            {
                path + "/" + key[len(path) + 1 :].split("/")[0]
                for key in self.objects
                if key.startswith(path + "/")
            }
        )
        infos = [self.info(name) for name in names]
        return infos if detail else names

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        obj = self.objects[self._strip_protocol(path)]
        data: bytes = obj.read(start or 0, obj.size if end is None else end)
        self.count(len(data))
        return data

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: Any = None,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        return CountingFile(
            self,
            path,
            mode,
            block_size=block_size or 50 * MiB,
            cache_type=cache_type,
            cache_options=cache_options,
            size=self.objects[path].size,
        )


@pytest.fixture
def store() -> CountingFS:
    import fsspec
    from airflow.sdk.io import attach

    fsspec.register_implementation("countfs", CountingFS, clobber=True)
    fs = CountingFS()
    attach("countfs", fs=fs)
    CountingFS.objects.clear()
    CountingFS.bytes_read = 0
    return fs


def drain(handle: Any, chunk: int = 64 * 1024) -> int:
    """Read a stream to its end as a streaming upload does."""
    total = 0
    with handle:
        while data := handle.read(chunk):
            total += len(data)
    return total


def test_checking_200_small_objects_reads_their_headers_only(store: CountingFS) -> None:
    for i in range(200):
        CountingFS.objects[f"calls/c{i:03d}.wav"] = Synthetic(wav_header(100_000), 100_044)
    inputs = resolve_inputs("countfs://calls/*.wav")
    assert len(inputs) == 200 and CountingFS.bytes_read == 0  # sizes come from the listing
    assert all(check_input(item).problem is None for item in inputs)
    assert CountingFS.bytes_read == 200 * 16


def test_checks_probe_and_upload_of_a_300_mb_object_read_it_once(store: CountingFS) -> None:
    from airflow_provider_kubeai_speech.transcription.decode import probe

    size = 300_000_044
    CountingFS.objects["calls/long.wav"] = Synthetic(wav_header(size - 44), size)
    (item,) = resolve_inputs("countfs://calls/long.wav")
    check_input(item)
    assert item.problem is None and CountingFS.bytes_read == 16
    info = probe(item.opener(), item.uri)
    assert round(info.duration) == (size - 44) // 32000
    probed = CountingFS.bytes_read - 16
    assert probed <= 256 * 1024 + 12  # the header and one small read-ahead, not a 50 MiB block

    tracemalloc.start()
    try:
        sent = drain(item.opener()())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == size
    assert CountingFS.bytes_read <= 1.1 * size, CountingFS.bytes_read / size
    assert peak <= 64 * MiB, peak / MiB
    print(
        f"\n300 MB object: check 16 B, probe {probed} B, total read {CountingFS.bytes_read / size:.4f} x size, peak {peak / MiB:.1f} MiB"
    )


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg"])
def test_probing_other_formats_reads_what_ffmpeg_needs_not_the_object(
    store: CountingFS, tmp_path: Path, ext: str
) -> None:
    pytest.importorskip("av")
    from airflow_provider_kubeai_speech.transcription.decode import pcm_blocks, probe
    from local_kubeai.recordings import write_recording

    local = write_recording(tmp_path / f"meeting.{ext}", 600.0, seed=3)
    CountingFS.objects[f"calls/meeting.{ext}"] = OnDisk(local)
    size = local.stat().st_size
    (item,) = resolve_inputs(f"countfs://calls/meeting.{ext}")
    assert round(probe(item.opener(), item.uri).duration) == 600
    probed = CountingFS.bytes_read
    assert probed < 0.5 * size or probed <= 512 * 1024, (probed, size)
    CountingFS.bytes_read = 0
    decoded = sum(len(block) for block in pcm_blocks(item.opener(), item.uri))
    assert decoded > 0 and CountingFS.bytes_read <= 1.1 * size, CountingFS.bytes_read / size
    print(f"\n{ext}: {size} B, probe read {probed} B, decode read {CountingFS.bytes_read / size:.3f} x size")
