"""Uploads stream from a real s3fs file: one pass over the object (check + probe + upload read at
most 1.1 times its size, counted by moto's request record), the exact bytes reach KubeAI, and
checks of many objects read a few bytes each, never a whole block. (Client memory for a 300 MB
object is measured by ``benchmarks/object_storage.py``, with moto in another process.)"""

from __future__ import annotations

import hashlib
import os
import wave
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.audio_files import make_wav
from tests.objectstore.conftest import S3
from tests.objectstore.helpers import batch, hook

pytestmark = pytest.mark.slow


def big_wav(path: Path, mib: int) -> bytes:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        for _ in range(mib):
            wav.writeframesraw(os.urandom(1 << 20))
    return path.read_bytes()


@pytest.mark.parametrize("chunk_seconds", [None, 3600], ids=["whole", "probed-then-whole"])
def test_upload_streams_from_s3_in_one_pass(
    s3: S3, whisper: Any, tmp_path: Path, chunk_seconds: float | None
) -> None:
    s3.create_bucket("calls")
    data = big_wav(tmp_path / "big.wav", 24)  # 786 s: probed with chunk_seconds=3600, sent whole
    s3.put("s3://calls/day/big.wav", data)
    s3.traffic.clear()
    chunking = None if chunk_seconds is None else ChunkSettings(chunk_seconds, 2)
    summary = batch(str(tmp_path / "out"), chunking=chunking).run(resolve_inputs("s3://calls/day/*.wav"))
    assert summary.count("ok") == 1, summary.to_xcom()
    read = s3.traffic.bytes_read("calls/day/big.wav")
    assert len(data) <= read <= 1.1 * len(data), f"read {read / len(data):.2f} times the object"
    stats = whisper.stats.snapshot()
    assert stats["completed_by_digest"] == {hashlib.sha256(data).hexdigest(): 1}  # the exact bytes


def test_hook_streams_an_object_storage_path(s3: S3, whisper: Any, tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    s3.create_bucket("calls")
    data = big_wav(tmp_path / "big.wav", 8)
    s3.put("s3://calls/big.wav", data)
    s3.traffic.clear()
    client = hook()
    result = client.transcribe("whisper", ObjectStoragePath("s3://calls/big.wav", conn_id="aws_default"))
    client.close()
    assert result.text
    assert len(data) <= s3.traffic.bytes_read("calls/big.wav") <= 1.1 * len(data)
    assert whisper.stats.snapshot()["completed_by_digest"] == {hashlib.sha256(data).hexdigest(): 1}


def test_hook_streams_a_uri_through_aws_default(s3: S3, whisper: Any, tmp_path: Path) -> None:
    """A plain ``s3://`` string given to the hook reaches the bucket through aws_default (boto's own
    chain is empty here) and is read once."""
    s3.create_bucket("calls")
    data = big_wav(tmp_path / "big.wav", 4)
    s3.put("s3://calls/uri.wav", data)
    s3.traffic.clear()
    client = hook()
    result = client.transcribe("whisper", "s3://calls/uri.wav")
    client.close()
    assert result.text
    assert len(data) <= s3.traffic.bytes_read("calls/uri.wav") <= 1.1 * len(data)


def test_checking_many_objects_reads_a_few_bytes_of_each(s3: S3, tmp_path: Path) -> None:
    s3.create_bucket("calls")
    template = make_wav(tmp_path / "t.wav", 30.0).read_bytes()  # 960 KB
    for i in range(20):
        s3.put(f"s3://calls/day/call-{i:03d}.wav", template[:-4] + i.to_bytes(4, "little"))
    s3.put("s3://calls/day/bad.wav", b"not audio at all" + b"\x00" * 1_000_000)
    inputs = resolve_inputs("s3://calls/day/*.wav")
    s3.traffic.clear()
    checked = batch(None).check(inputs)
    problems = {item.name: item.problem for item in checked if item.problem}
    assert list(problems) == ["bad.wav"] and "not audio" in str(problems["bad.wav"])
    read = s3.traffic.bytes_read("calls/day/")
    assert read <= 21 * 64 * 1024, f"{read} bytes read to check 21 objects of about 1 MB"
