"""Making distinct WAV files for batch tests (the fake engine's text depends on the bytes)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path


def make_wav(path: Path, seconds: float = 0.5, seed: int = 0, rate: int = 16000) -> Path:
    """A mono 16-bit WAV whose samples depend on ``seed``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    freq = 200 + (seed * 37) % 800
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)) + seed % 7)
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return path


def make_wavs(folder: Path, count: int, seconds: float = 0.5, prefix: str = "call") -> list[Path]:
    return [make_wav(folder / f"{prefix}-{i:04d}.wav", seconds, seed=i) for i in range(count)]
