"""The sandbox decodes uploads as KubeAI's FasterWhisper engine does (faster_whisper.audio.decode_audio)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("av")
pytest.importorskip("faster_whisper")

import numpy as np
from faster_whisper.audio import decode_audio

from local_kubeai.audio import AudioDecodeError, decode_upload, pcm_seconds
from local_kubeai.recordings import write_recording


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "m4a", "ogg"])
def test_decoded_like_faster_whisper(tmp_path: Path, ext: str) -> None:
    path = write_recording(tmp_path / f"r.{ext}", 3.0, seed=1)
    pcm = decode_upload(path)
    assert pcm_seconds(pcm) == pytest.approx(3.0, abs=0.1)
    ours = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    np.testing.assert_array_equal(ours, decode_audio(str(path)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 64, "cannot be decoded"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "the WAV file is corrupt"),
    ],
)
def test_what_ffmpeg_cannot_read_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError, match=message):
        decode_upload(path)
