"""Long recordings, piece by piece: decoding, cutting at pauses, the piece streams, stitching, settings."""

from __future__ import annotations

import io
import itertools
import json
import math
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airflow_provider_kubeai_speech.exceptions import AudioExtraMissing, KubeAISpeechError
from airflow_provider_kubeai_speech.transcription.decode import SAMPLE_RATE, DecodeError, pcm_blocks, probe
from airflow_provider_kubeai_speech.transcription.long_audio import chunk_settings
from airflow_provider_kubeai_speech.transcription.splitter import Piece, PieceSplitter, piece_opener
from airflow_provider_kubeai_speech.transcription.stitch import render, stitch
from local_kubeai.recordings import FORMATS
from tests.long_audio_files import SECONDS, srt_cues

CODECS = {"wav": "pcm_s16le", "flac": "flac", "mp3": "mp3float", "m4a": "aac", "ogg": "opus"}


def opener(path: Path) -> Any:
    return lambda: path.open("rb")


def decoded(path: Path) -> bytes:
    return b"".join(pcm_blocks(opener(path), path.name))


# -- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", list(FORMATS))
def test_every_format_decodes_to_16k_mono(recordings: dict[str, Path], ext: str) -> None:
    info = probe(opener(recordings[ext]), recordings[ext].name)
    assert info.codec == CODECS[ext] and info.channels == 1
    assert info.duration == pytest.approx(SECONDS, abs=0.1)
    assert len(decoded(recordings[ext])) / 2 / SAMPLE_RATE == pytest.approx(SECONDS, abs=0.1)


def test_decoded_blocks_are_small(recordings: dict[str, Path]) -> None:
    sizes = [len(block) for block in pcm_blocks(opener(recordings["mp3"]), "m")]
    assert len(sizes) >= 39 and max(sizes) < 64 * 1024  # about a second each, never the whole recording


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("noise.mp3", bytes(range(256)) * 64, "noise.mp3 cannot be decoded"),
        ("empty.ogg", b"OggS" + b"\x00" * 60, "empty.ogg cannot be decoded"),
    ],
)
def test_corrupt_files_are_refused_by_name(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DecodeError, match=message):
        probe(opener(path), name)


def test_a_truncated_m4a_is_refused(recordings: dict[str, Path], tmp_path: Path) -> None:
    data = recordings["m4a"].read_bytes()
    path = tmp_path / "cut.m4a"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is lost with the second half
    with pytest.raises(DecodeError, match=r"cut\.m4a"):
        decoded(path)


# -- cutting ----------------------------------------------------------------------------------


def split(pcm: bytes, chunk: float, overlap: float = 2.0, parallel: int = 1) -> list[Piece]:
    splitter = PieceSplitter(
        io.BufferedWriter(io.BytesIO()),  # type: ignore[arg-type]
        expected_seconds=len(pcm) / 2 / SAMPLE_RATE,
        chunk_seconds=chunk,
        overlap_seconds=overlap,
        parallel=parallel,
    )
    pieces: list[Piece] = []
    for start in range(0, len(pcm), 4608):  # MP3-frame-sized blocks
        pieces += splitter.feed(pcm[start : start + 4608])
    return pieces + splitter.finish()


def test_pieces_cover_the_recording_and_cuts_fall_in_pauses(recordings: dict[str, Path]) -> None:
    pcm = decoded(recordings["wav"])
    samples = np.frombuffer(pcm, dtype="<i2")
    pieces = split(pcm, chunk=12, overlap=2)
    assert len(pieces) == math.ceil(SECONDS / 12)
    assert pieces[0].start == 0 and pieces[-1].end == len(samples) and pieces[-1].keep_until is None
    for before, after in itertools.pairwise(pieces):
        seam = after.keep_from
        assert before.keep_until == seam
        assert after.start == seam - SAMPLE_RATE and before.end == seam + SAMPLE_RATE  # 1 s each side
        assert abs(seam - after.index * len(samples) / len(pieces)) <= 2.4 * SAMPLE_RATE  # near its place
        around = samples[seam - SAMPLE_RATE // 20 : seam + SAMPLE_RATE // 20]
        assert np.abs(around.astype(np.int32)).max() < 200, "a cut inside an utterance"
    assert all(p.seconds <= 40 / 4 + 2 * 2.0 + 2.0 for p in pieces)


def test_piece_count_is_rounded_up_to_keep_every_replica_busy(recordings: dict[str, Path]) -> None:
    pcm = decoded(recordings["wav"])
    assert len(split(pcm, chunk=10.5, parallel=5)) == 5  # 4 pieces would leave a replica idle
    assert len(split(pcm, chunk=10.5, parallel=4)) == 4
    assert len(split(pcm, chunk=12, parallel=3)) == 4  # 6 would be shorter than 3/4 of chunk_seconds
    assert len(split(pcm, chunk=39.5, parallel=4)) == 1  # within 2 % of one piece: not split


def test_without_pauses_cuts_stay_at_their_planned_place() -> None:
    tone = (np.sin(np.arange(30 * SAMPLE_RATE) * 2 * np.pi * 200 / SAMPLE_RATE) * 8000).astype("<i2")
    pieces = split(tone.tobytes(), chunk=10, overlap=0)
    assert [p.keep_from for p in pieces] == [0, 10 * SAMPLE_RATE, 20 * SAMPLE_RATE]


def test_a_piece_streams_as_a_wav_of_its_samples(tmp_path: Path) -> None:
    spool = tmp_path / "spool.pcm"
    pcm = np.arange(-5000, 5000, dtype="<i2").tobytes()
    spool.write_bytes(pcm)
    piece = Piece(1, 1000, 4000, 1500, 3500)
    stream = piece_opener(str(spool), piece)()
    assert stream.len == 44 + 3000 * 2  # type: ignore[attr-defined]
    data = stream.read()
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
        assert wav.readframes(wav.getnframes()) == pcm[2000:8000]
    stream.seek(10)
    assert stream.tell() == 10 and stream.read(40) == data[10:50]  # across the header's end
    stream.close()


# -- stitching ---------------------------------------------------------------------------------


def word(text: str, start: float, end: float) -> dict[str, Any]:
    return {"word": f" {text}", "start": start, "end": end, "probability": 0.9}


def segment(start: float, end: float, text: str) -> dict[str, Any]:
    return {"id": 1, "seek": 0, "start": start, "end": end, "text": f" {text}", "tokens": [1]}


SR = SAMPLE_RATE
#: Two pieces cut at 10 s with 2 s of overlap: the first spans 0-11 s, the second 9-20 s.
FIRST = Piece(0, 0, 11 * SR, 0, 10 * SR)
SECOND = Piece(1, 9 * SR, 20 * SR, 10 * SR, None)
FIRST_RESULT = {
    "language": "en",
    "segments": [segment(1.0, 3.0, "one two"), segment(8.0, 10.9, "three four five")],
    "words": [
        word("one", 1.0, 1.8),
        word("two", 2.0, 3.0),
        word("three", 8.0, 8.9),
        word("four", 9.1, 9.8),
        word("five", 10.2, 10.9),  # cut off by the piece's end: the next piece has it whole
    ],
}
SECOND_RESULT = {  # times on the piece's clock: 0 s here is 9 s in the recording
    "language": "en",
    "segments": [segment(0.1, 2.5, "four five"), segment(4.0, 6.0, "six seven")],
    "words": [
        word("four", 0.1, 0.8),
        word("five", 1.2, 2.5),
        word("six", 4.0, 5.0),
        word("seven", 5.1, 6.0),
    ],
}


def test_the_overlap_is_kept_once_and_times_move_to_the_recording_clock() -> None:
    joined = stitch([(SECOND, SECOND_RESULT), (FIRST, FIRST_RESULT)], duration=20.0)
    assert joined["text"] == "one two three four five six seven"
    assert [w["word"].strip() for w in joined["words"]] == [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
    ]
    assert [(s["id"], s["start"], s["end"], s["text"]) for s in joined["segments"]] == [
        (1, 1.0, 3.0, " one two"),
        (2, 8.0, 9.8, " three four"),  # split at the seam: 'five' goes to the piece it is whole in
        (3, 10.2, 11.5, " five"),
        (4, 13.0, 15.0, " six seven"),
    ]
    assert joined["words"][4] == word("five", 10.2, 11.5)
    assert joined["duration"] == 20.0 and joined["language"] == "en"


def test_without_word_times_the_overlap_is_aligned_by_its_words() -> None:
    first = {"segments": FIRST_RESULT["segments"]}
    second = {"segments": SECOND_RESULT["segments"]}
    joined = stitch([(FIRST, first), (SECOND, second)], duration=20.0)
    # both pieces heard 'four five': the transcript switches pieces inside that run, so it is
    # kept once, and the segment cut there is timed by spreading it over its characters
    assert joined["text"] == "one two three four five six seven"
    cues = [(s["start"], s["end"], s["text"].strip()) for s in joined["segments"]]
    assert [text for *_, text in cues] == ["one two", "three four", "five", "six seven"]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues))
    assert cues[1][0] == 8.0 and 9.5 < cues[1][1] <= 10.3 and cues[2][1] == 11.5


def test_words_heard_at_one_time_only_by_each_edge_are_not_a_match() -> None:
    first = {"segments": [segment(1.0, 3.0, "one two"), segment(8.0, 10.9, "alpha beta gamma")]}
    second = {"segments": [segment(2.0, 3.0, "alpha beta"), segment(4.0, 6.0, "six seven")]}  # 11-12 s
    joined = stitch([(FIRST, first), (SECOND, second)], duration=20.0)
    # 'alpha beta' 2.5 s apart is not the same speech: the seam splits by time instead (the
    # spread 'gamma' has its middle past the seam, where the second piece is kept)
    assert joined["text"] == "one two alpha beta alpha beta six seven"


def test_rendering_in_every_format() -> None:
    joined = stitch([(FIRST, FIRST_RESULT), (SECOND, SECOND_RESULT)], duration=20.0)
    content, data = render(joined, "json")
    assert json.loads(content) == data == {"text": "one two three four five six seven"}
    content, data = render(joined, "verbose_json", ["segment"])
    assert data is not None and data["words"] is None and len(data["segments"]) == 4
    _, data = render(joined, "verbose_json", ["word", "segment"])
    assert data is not None and len(data["words"]) == 7
    assert render(joined, "text") == ("one two three four five six seven", None)
    cues = srt_cues(render(joined, "srt")[0])
    assert [(c[0], c[1]) for c in cues] == [(1.0, 3.0), (8.0, 9.8), (10.2, 11.5), (13.0, 15.0)]
    vtt = render(joined, "vtt")[0]
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:03.000\none two\n")  # as the server: from zero
    with pytest.raises(ValueError, match="docx"):
        render(joined, "docx")


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk", "overlap", "message"),
    [
        (5, 1, r"chunk_seconds=5 is too short.*Fix: chunk_seconds=300"),
        ("ten", 2, r"chunk_seconds='ten' is not a number of seconds.*Fix"),
        (60, 20, r"chunk_overlap_seconds=20 must be between 0 and a quarter of chunk_seconds \(15\)"),
        (60, -1, r"chunk_overlap_seconds=-1"),
        (float("inf"), 2, r"chunk_seconds=inf"),
    ],
)
def test_bad_chunk_settings_name_the_field_and_the_fix(chunk: Any, overlap: Any, message: str) -> None:
    with pytest.raises(KubeAISpeechError, match=message):
        chunk_settings(chunk, overlap)


def test_chunk_settings() -> None:
    assert chunk_settings(None, 2) is None
    settings = chunk_settings("300", "1.5")
    assert settings is not None and (settings.chunk_seconds, settings.overlap_seconds) == (300.0, 1.5)


def test_a_missing_audio_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # what an install without the extra looks like
    with pytest.raises(AudioExtraMissing) as raised:
        chunk_settings(300, 2)
    assert "chunk_seconds=300 needs PyAV" in str(raised.value)
    assert "pip install 'airflow-provider-kubeai-speech[audio]'" in str(raised.value)
    assert "chunk_seconds=None" in str(raised.value)


def test_seam_keys_keep_letters_of_every_script() -> None:
    """Words of any language are matched at a seam, not only ASCII ones."""
    from airflow_provider_kubeai_speech.transcription.stitch import _key

    assert _key(" Café,") == "café"
    assert _key("Über!") == "über"
    assert _key("Привет.") == "привет"
    assert _key("東京") == "東京"
    assert _key("don't") == "don't"
