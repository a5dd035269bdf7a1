"""Reading uploads in the sandbox: 16 kHz mono 16-bit PCM, as KubeAI's engines decode it.

KubeAI's FasterWhisper engine decodes every upload with ``faster_whisper.audio.decode_audio``:
PyAV opens the file, frames FFmpeg calls invalid are skipped, the rest are resampled to 16 kHz
mono s16 and scaled to float (``/ 32768``). This module does the same with its own small PyAV
resampler and keeps the s16 samples (pocketsphinx reads them as they are; the faster-whisper
engine scales them to float exactly as ``decode_audio`` does). It shares no code with the
provider on purpose: the sandbox is the independent oracle the provider is tested against.
16 kHz mono WAV, the common case, is read directly. An upload FFmpeg cannot open, or that holds
no audio, is answered with 400.
"""

from __future__ import annotations

import wave
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2
BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE


class AudioDecodeError(ValueError):
    """The upload is not audio the engine can read."""


def decode_upload(path: Path) -> bytes:
    """The upload as 16 kHz mono s16le PCM.

    :param path: the uploaded file.
    :raises AudioDecodeError: FFmpeg cannot open it, it has no audio stream, or no samples.
    """
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
            raise AudioDecodeError(f"the WAV file is corrupt: {err}") from err
    return _decode_with_ffmpeg(path)


def _decode_with_ffmpeg(path: Path) -> bytes:
    import av

    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as err:
        raise AudioDecodeError(f"the upload cannot be decoded: {type(err).__name__}: {err}") from err
    pcm = bytearray()
    with container:
        if not container.streams.audio:
            raise AudioDecodeError("the upload has no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frames = container.decode(container.streams.audio[0])
        try:
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    break
                except av.InvalidDataError:
                    continue  # as decode_audio does: a damaged frame is skipped, not fatal
                frame.pts = None
                for out in resampler.resample(frame):
                    pcm += bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE]
            for out in resampler.resample(None):
                pcm += bytes(out.planes[0])[: out.samples * BYTES_PER_SAMPLE]
        except av.FFmpegError as err:
            raise AudioDecodeError(
                f"the upload is corrupt after {pcm_seconds(pcm):.1f} s: {type(err).__name__}: {err}"
            ) from err
    if not pcm:
        raise AudioDecodeError("the upload holds no decodable audio")
    return bytes(pcm)


def pcm_seconds(pcm: bytes | bytearray) -> float:
    """How long 16 kHz mono s16 PCM lasts, in seconds."""
    return len(pcm) / BYTES_PER_SECOND
