"""Cutting a decoded recording into overlapping pieces, at pauses, while it is still being decoded.

PCM blocks go to a spool file on disk as they arrive (never the whole recording in memory), and
the loudness of every 10 ms frame is kept (1.4 MB for an hour). Cuts are planned evenly over the
container's duration, at most ``chunk_seconds`` apart; each cut then moves to the quietest 100 ms
within ``search_seconds`` of its place, so it falls in a pause rather than inside a word. Piece
``i`` spans from ``overlap / 2`` before its first cut to ``overlap / 2`` past its last one, and is
handed out the moment the decoder has passed its end, so transcription starts while decoding
continues.

Each piece carries its *seams*: the cuts it shares with its neighbours. When the pieces are
stitched, the overlap around a seam is aligned by the words both pieces heard there; where they
share none, a word belongs to the piece whose seams enclose the word's middle (see :mod:`.stitch`).
"""

from __future__ import annotations

import io
import math
import os
import struct
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from airflow_provider_kubeai_speech.transcription.decode import BYTES_PER_SAMPLE, SAMPLE_RATE

if TYPE_CHECKING:
    from collections.abc import Callable

FRAME = SAMPLE_RATE // 100  # 10 ms
QUIET_WINDOW_FRAMES = 10  # cuts go to the quietest 100 ms
MAX_SEARCH_SECONDS = 3.0
#: A recording 2 % longer than a whole number of pieces (an MP3's padding) is not given one more.
LENIENCY = 1.02
SHORTEST_ROUNDED = 0.75


@dataclass(frozen=True)
class Piece:
    """One piece of a recording, in samples at 16 kHz.

    :param index: its position, from 0.
    :param start: first sample sent.
    :param end: one past the last sample sent.
    :param keep_from: the seam with the previous piece (words whose middle is earlier belong there).
    :param keep_until: the seam with the next piece, or None for the last piece.
    """

    index: int
    start: int
    end: int
    keep_from: int
    keep_until: int | None

    @property
    def offset(self) -> float:
        """Seconds from the start of the recording to the start of this piece."""
        return self.start / SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE

    def bounds(self) -> tuple[float, float]:
        """The stretch of the recording this piece's transcript is kept for, in seconds."""
        until = math.inf if self.keep_until is None else self.keep_until / SAMPLE_RATE
        return self.keep_from / SAMPLE_RATE, until

    def describe(self) -> str:
        return f"piece {self.index + 1} ({self.start / SAMPLE_RATE:.1f}-{self.end / SAMPLE_RATE:.1f} s)"

    def to_record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "keep_from": self.keep_from,
            "keep_until": self.keep_until,
        }


def search_seconds_for(step_seconds: float) -> float:
    """How far a cut may move to find a pause: 3 s, or a fifth of the piece length when shorter."""
    return min(MAX_SEARCH_SECONDS, step_seconds / 5)


class PieceSplitter:
    """Spools PCM and hands out pieces as soon as they are complete.

    :param spool: a binary file the PCM is appended to (pieces are read back from it by path).
    :param expected_seconds: the container's duration, to spread the cuts evenly.
    :param chunk_seconds: longest distance between two cuts.
    :param overlap_seconds: audio shared by neighbouring pieces (half on each side of a cut).
    :param parallel: pieces transcribed at once; the piece count is rounded up to a multiple of
        it, so the last round keeps every replica busy instead of one (13 pieces at 4 at a time
        take 4 rounds; 16 shorter ones take 4 shorter rounds), unless pieces would get shorter
        than three quarters of ``chunk_seconds``.
    """

    def __init__(
        self,
        spool: io.BufferedWriter,
        *,
        expected_seconds: float,
        chunk_seconds: float,
        overlap_seconds: float,
        parallel: int = 1,
    ) -> None:
        count = max(1, math.ceil(expected_seconds / (chunk_seconds * LENIENCY)))
        rounded = math.ceil(count / max(1, parallel)) * max(1, parallel)
        if count > 1 and expected_seconds / rounded >= SHORTEST_ROUNDED * chunk_seconds:
            count = rounded
        self.planned = count
        self.step = round(expected_seconds / count * SAMPLE_RATE) if expected_seconds > 0 else 0
        self.step = self.step or round(chunk_seconds * SAMPLE_RATE)
        self.search = round(search_seconds_for(self.step / SAMPLE_RATE) * SAMPLE_RATE)
        self.half_overlap = round(overlap_seconds * SAMPLE_RATE / 2)
        self.spool = spool
        self.samples = 0
        self._energy = array("f")
        self._tail = b""
        self._cuts = [0]
        self._emitted = 0

    def feed(self, block: bytes) -> list[Piece]:
        """Take the next block of s16le PCM; returns the pieces now complete."""
        import numpy as np

        self.spool.write(block)
        self.samples += len(block) // BYTES_PER_SAMPLE
        data = self._tail + block
        usable = len(data) - len(data) % (FRAME * BYTES_PER_SAMPLE)
        self._tail = data[usable:]
        if usable:
            frames = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32).reshape(-1, FRAME)
            self._energy.frombytes(np.mean(frames * frames, axis=1).astype(np.float32).tobytes())
        while self.samples >= self._decided_after(len(self._cuts)):
            self._cuts.append(self._quietest_near(len(self._cuts) * self.step))
        return self._ready(final=False)

    def _decided_after(self, cut: int) -> int:
        """Samples needed before cut number ``cut`` can be placed. Cuts are planned at fixed places
        (no drift); past the probed duration (a stream longer than its header said) another cut
        is made only when at least half a piece follows it."""
        boundary = cut * self.step
        if cut < self.planned:
            return boundary + self.search + QUIET_WINDOW_FRAMES * FRAME
        return boundary + max(self.search + QUIET_WINDOW_FRAMES * FRAME, self.step // 2)

    def finish(self) -> list[Piece]:
        """The stream has ended: the remaining pieces."""
        self.spool.flush()
        return self._ready(final=True)

    def _quietest_near(self, boundary: int) -> int:
        import numpy as np

        first = max(self._cuts[-1] // FRAME + 1, (boundary - self.search) // FRAME)
        last = (boundary + self.search) // FRAME
        energy = np.frombuffer(self._energy, dtype=np.float32)[first : last + QUIET_WINDOW_FRAMES]
        if len(energy) < QUIET_WINDOW_FRAMES:
            return boundary
        loudness = np.convolve(energy, np.ones(QUIET_WINDOW_FRAMES, dtype=np.float32), mode="valid")
        centres = first + np.arange(len(loudness)) + QUIET_WINDOW_FRAMES // 2
        # the quietest window; among equally quiet ones, the one nearest the planned place
        order = np.lexsort((np.abs(centres * FRAME - boundary), np.round(loudness, 3)))
        return int(centres[order[0]]) * FRAME

    def _ready(self, *, final: bool) -> list[Piece]:
        pieces = []
        cuts = self._cuts
        while True:
            index = self._emitted
            is_last = final and index == len(cuts) - 1
            if index + 1 < len(cuts):
                end = min(self.samples, cuts[index + 1] + self.half_overlap)
                if not final and self.samples < cuts[index + 1] + self.half_overlap:
                    break
            elif is_last:
                end = self.samples
            else:
                break
            start = max(0, cuts[index] - self.half_overlap)
            keep_until = None if is_last else cuts[index + 1]
            pieces.append(Piece(index, start, end, cuts[index], keep_until))
            self._emitted += 1
        if pieces:
            self.spool.flush()
        return pieces


WAV_HEADER_BYTES = 44


def wav_header(samples: int) -> bytes:
    """A 44-byte RIFF header for 16 kHz mono s16le PCM of ``samples`` samples."""
    data = samples * BYTES_PER_SAMPLE
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data,
        b"WAVE",
        b"fmt ",
        16,
        1,
        1,
        SAMPLE_RATE,
        SAMPLE_RATE * BYTES_PER_SAMPLE,
        BYTES_PER_SAMPLE,
        16,
        b"data",
        data,
    )


class PieceReader(io.RawIOBase):
    """One piece as a WAV file, read straight from the spool (a fresh reader per attempt).

    :param spool_path: the spool file.
    :param piece: which samples.
    """

    def __init__(self, spool_path: str, piece: Piece) -> None:
        super().__init__()
        self._header = wav_header(piece.end - piece.start)
        self._data_start = piece.start * BYTES_PER_SAMPLE
        self.len = WAV_HEADER_BYTES + (piece.end - piece.start) * BYTES_PER_SAMPLE
        self._file = open(spool_path, "rb")  # noqa: SIM115 - closed by close()
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.len}[whence]
        self._position = max(0, min(self.len, base + offset))
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.len - self._position)
        if wanted <= 0:
            return 0
        written = 0
        if self._position < WAV_HEADER_BYTES:
            part = self._header[self._position : self._position + wanted]
            view[: len(part)] = part
            written = len(part)
        if written < wanted:
            self._file.seek(self._data_start + self._position + written - WAV_HEADER_BYTES)
            got = self._file.readinto(view[written:wanted])
            written += got or 0
        self._position += written
        return written

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def piece_opener(spool_path: str, piece: Piece) -> Callable[[], BinaryIO]:
    """A function opening a fresh buffered WAV stream of ``piece`` (one per upload attempt)."""

    def open_piece() -> BinaryIO:
        raw = PieceReader(spool_path, piece)
        stream = io.BufferedReader(raw, buffer_size=1 << 16)
        stream.len = raw.len  # type: ignore[attr-defined]  # the multipart encoder sizes parts by .len
        return cast("BinaryIO", stream)

    return open_piece
