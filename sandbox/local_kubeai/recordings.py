"""Synthetic long recordings for tests and benchmarks: utterances and pauses, in any format.

Utterances are 1 to 4 s of voiced sound (a gliding tone with harmonics) and pauses 0.5 to 1.2 s
of faint noise, like a conversation. The fake engine hears each utterance as words, so these
recordings exercise cutting at pauses and stitching. Generated and encoded block by block: an
hour of audio never sits in memory. Real speech for recognition tests comes from the Festival
voices in ``example_dags/data/audio`` (see its README), never from espeak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local_kubeai.audio import SAMPLE_RATE

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy as np


@dataclass(frozen=True)
class Encoding:
    """How one format is written: container, codec and the codec's sample rate."""

    container: str
    codec: str
    rate: int


#: The formats long recordings are tested in (file extension -> encoding).
FORMATS: dict[str, Encoding] = {
    "wav": Encoding("wav", "pcm_s16le", SAMPLE_RATE),
    "flac": Encoding("flac", "flac", SAMPLE_RATE),
    "mp3": Encoding("mp3", "mp3", SAMPLE_RATE),
    "m4a": Encoding("ipod", "aac", SAMPLE_RATE),
    "ogg": Encoding("ogg", "libopus", 48_000),
}


def speech_like_blocks(seconds: float, seed: int = 0) -> Iterator[np.ndarray]:
    """16 kHz mono int16 blocks (an utterance or a pause each) adding up to ``seconds``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    total = int(seconds * SAMPLE_RATE)
    produced = 0
    speaking = False
    while produced < total:
        length = int((rng.uniform(1.0, 4.0) if speaking else rng.uniform(0.5, 1.2)) * SAMPLE_RATE)
        length = min(length, total - produced)
        if speaking:
            t = np.arange(length) / SAMPLE_RATE
            pitch = rng.uniform(110, 320) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
            phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
            voice = np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase)
            envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02) * rng.uniform(5000, 9000)
            block = voice * envelope
        else:
            block = rng.normal(0, 12, length)
        produced += length
        speaking = not speaking
        yield np.clip(block, -32768, 32767).astype(np.int16)


def write_recording(path: Path, seconds: float, seed: int = 0) -> Path:
    """Write a speech-like recording; the format follows ``path``'s extension (see :data:`FORMATS`)."""
    import av

    encoding = FORMATS[path.suffix.lower().lstrip(".")]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=encoding.container) as container:
        stream: Any = container.add_stream(encoding.codec, rate=encoding.rate)
        stream.layout = "mono"
        if encoding.codec == "mp3":
            stream.bit_rate = 64_000
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name if stream.codec_context.format else "s16",
            layout="mono",
            rate=encoding.rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for block in speech_like_blocks(seconds, seed):
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for out in resampler.resample(frame):
                container.mux(stream.encode(out))
        for out in resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return path
