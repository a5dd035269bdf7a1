"""Reading uploads in the sandbox: 16 kHz mono 16-bit PCM, as KubeAI's engines decode it.

faster-whisper decodes every upload with PyAV; so does the sandbox (16 kHz mono WAV, the common
case, is read directly). An upload FFmpeg cannot decode is answered with 400.
"""

from __future__ import annotations

import wave
from typing import TYPE_CHECKING

from airflow_provider_kubeai_speech.transcription.decode import SAMPLE_RATE, DecodeError, pcm_blocks

if TYPE_CHECKING:
    from pathlib import Path

BYTES_PER_SECOND = SAMPLE_RATE * 2


class AudioDecodeError(ValueError):
    """The upload is not audio the engine can read."""


def decode_upload(path: Path) -> bytes:
    """The upload as 16 kHz mono s16le PCM."""
    with path.open("rb") as handle:
        header = handle.read(12)
    if header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        try:
            with wave.open(str(path), "rb") as wav:
                if wav.getnframes() == 0 or wav.getframerate() == 0:
                    raise AudioDecodeError("the WAV file holds no audio frames")
                if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE):
                    return wav.readframes(wav.getnframes())
        except (wave.Error, EOFError) as err:
            raise AudioDecodeError(f"the WAV file is corrupt: {err}") from None
    try:
        return b"".join(pcm_blocks(lambda: path.open("rb"), "the upload"))
    except DecodeError as err:
        raise AudioDecodeError(str(err)) from None


def pcm_seconds(pcm: bytes) -> float:
    return len(pcm) / BYTES_PER_SECOND
