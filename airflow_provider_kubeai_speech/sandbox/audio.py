"""Reading uploaded audio in the sandbox: WAV duration and 16 kHz mono PCM for recognisers."""

from __future__ import annotations

import array
import sys
import wave
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

#: Bytes per second assumed for audio the sandbox cannot parse (16 kHz, 16-bit, mono).
FALLBACK_BYTES_PER_SECOND = 32_000


class AudioDecodeError(ValueError):
    """The upload is not audio the engine can read."""


def duration_seconds(path: Path) -> float:
    """Duration of a WAV file from its header; other files are estimated from their size."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else 0.0
    except (wave.Error, EOFError):
        return path.stat().st_size / FALLBACK_BYTES_PER_SECOND


def read_pcm16_mono_16k(path: Path) -> bytes:
    """16-bit little-endian mono PCM at 16 kHz, as pocketsphinx wants it."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise AudioDecodeError(f"not a PCM WAV file: {err}") from None
    if width != 2:
        raise AudioDecodeError(f"WAV sample width {width * 8} bits is not supported (16-bit PCM only)")
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":
        samples.byteswap()
    if channels > 1:
        samples = array.array(
            "h", (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels))
        )
    if rate != 16_000:
        step = rate / 16_000
        count = int(len(samples) / step)
        samples = array.array("h", (samples[int(i * step)] for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def check_decodable(path: Path) -> None:
    """Refuse uploads that claim to be WAV but cannot be decoded (the server answers 400 for those)."""
    with path.open("rb") as handle:
        header = handle.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return  # other containers are not decoded by the sandbox
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getnframes() == 0 or wav.getframerate() == 0:
                raise AudioDecodeError("the WAV file holds no audio frames")
    except (wave.Error, EOFError) as err:
        raise AudioDecodeError(f"the WAV file is corrupt: {err}") from None
