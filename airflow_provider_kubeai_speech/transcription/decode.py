"""Decoding recordings to 16 kHz mono 16-bit PCM with PyAV (FFmpeg in its wheel), block by block.

WAV, FLAC, MP3, M4A/AAC, OGG/Vorbis, OGG/Opus, WebM and whatever else FFmpeg reads. PyAV and
numpy are the ``audio`` extra; they are imported only when a recording is actually decoded, and
:func:`missing_audio_extra` says which are absent. Nothing here imports Airflow;
:mod:`.long_audio` turns these errors into provider exceptions.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2
BLOCK_BYTES = SAMPLE_RATE * BYTES_PER_SAMPLE  # one second
INSTALL_HINT = "pip install 'airflow-provider-kubeai-speech[audio]'"


class DecodeError(ValueError):
    """A recording FFmpeg cannot read: corrupt, truncated, or not audio."""


def missing_audio_extra() -> list[str]:
    """The packages of the ``audio`` extra that cannot be imported."""
    missing = []
    for module, label in (("av", "PyAV"), ("numpy", "numpy")):
        try:
            __import__(module)
        except ImportError:
            missing.append(label)
    return missing


@dataclass(frozen=True)
class AudioInfo:
    """What a container says about its audio.

    :param duration: seconds (estimated from the bitrate for some MP3 files).
    :param codec: the audio codec (``pcm_s16le``, ``mp3``, ``aac``, ``opus``, ...).
    :param sample_rate: the stream's sample rate.
    :param channels: the stream's channel count.
    """

    duration: float
    codec: str
    sample_rate: int
    channels: int


def _container(handle: BinaryIO, what: str) -> Any:
    """The FFmpeg container over an open stream; the caller closes the stream."""
    import av

    try:
        container = av.open(handle, mode="r")
    except Exception as err:
        raise DecodeError(f"{what} cannot be decoded: {_reason(err)}") from err
    if not container.streams.audio:
        container.close()
        raise DecodeError(f"{what} has no audio stream")
    return container


def probe(opener: Callable[[], BinaryIO], what: str) -> AudioInfo:
    """Read the container's header: duration, codec, rate and channels (no decoding).

    The recording is opened once. A PCM WAV header is read directly (20 µs, where opening it
    with FFmpeg takes 1.6 ms). An opener with a ``probe()`` method (a remote recording's) is
    opened through it, with a small read-ahead: only the header is fetched, never the object.
    """
    with getattr(opener, "probe", opener)() as handle:
        pcm_wav = _pcm_wav_info(handle)
        if pcm_wav is not None:
            return pcm_wav
        handle.seek(0)
        container = _container(handle, what)
        try:
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            return AudioInfo(
                duration=duration,
                codec=stream.codec_context.name,
                sample_rate=int(stream.codec_context.sample_rate or 0),
                channels=int(stream.codec_context.channels or 0),
            )
        finally:
            container.close()


def _pcm_wav_info(handle: BinaryIO) -> AudioInfo | None:
    import wave

    header = handle.read(12)
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    handle.seek(0)
    try:
        with wave.open(handle, "rb") as wav:
            rate, frames, channels = wav.getframerate(), wav.getnframes(), wav.getnchannels()
            width = wav.getsampwidth()
    except (wave.Error, EOFError):
        return None  # not plain PCM, or damaged: FFmpeg decides
    if not rate or not frames:
        return None
    return AudioInfo(frames / rate, "pcm_u8" if width == 1 else f"pcm_s{8 * width}le", rate, channels)


def pcm_blocks(opener: Callable[[], BinaryIO], what: str) -> Iterator[bytes]:
    """The recording as 16 kHz mono s16le PCM, about one second (32 KB) per block.

    Memory stays flat: nothing but the current block is held. (Decoded frames are far smaller,
    36 ms for MP3 at 16 kHz; gathering them into blocks makes the work per block negligible.)
    A stream that breaks off part way raises :class:`DecodeError` naming the position.
    """
    import av

    handle = opener()
    try:
        container = _container(handle, what)
    except BaseException:
        handle.close()
        raise
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    produced = 0
    block = bytearray()
    try:
        stream = container.streams.audio[0]
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    produced += out.samples
                    block += bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE]
                if len(block) >= BLOCK_BYTES:
                    yield bytes(block)
                    block.clear()
            for out in resampler.resample(None):
                produced += out.samples
                block += bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE]
        except av.FFmpegError as err:
            raise DecodeError(
                f"{what} is corrupt after {produced / SAMPLE_RATE:.1f} s of audio: {_reason(err)}"
            ) from err
        if block:
            yield bytes(block)
    finally:
        with contextlib.suppress(Exception):
            container.close()
        handle.close()
    if produced == 0:
        raise DecodeError(f"{what} holds no decodable audio")


def _reason(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"
