"""Long recordings against the sandbox: pieces over real HTTP, stitched exactly like the whole file.

The fake engine is local in time (each stretch of sound becomes words derived from its samples),
so the transcript of the whole recording is the reference: the stitched one must have the same
words at the same times, nothing doubled or lost at the seams.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAIEndpointError
from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.transcription.batch import BatchFailed, BatchTranscriber
from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_records
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import AudioInput, resolve_inputs
from local_kubeai import Sandbox
from local_kubeai.recordings import FORMATS
from local_kubeai.testing import wait_until
from tests.audio_files import make_wavs
from tests.batch_setup import make_batch
from tests.integration.conftest import model_manifest
from tests.long_audio_files import SECONDS, same_cues, srt_cues

NS = "kubeai"
FAST = RetrySettings(max_attempts=3, backoff_factor=0.01, backoff_max=0.02, backoff_jitter=0.0)


@pytest.fixture
def sandbox(make_kubeai_sandbox: Any) -> Sandbox:
    served = make_kubeai_sandbox(startup_delay=0.1, replica_concurrency=2)
    served.store.create(NS, model_manifest("whisper", replicas=2, scaling={"min_replicas": 2}), "t")
    wait_until(
        lambda: (served.store.get(NS, "whisper").get("status") or {}).get("replicas", {}).get("ready") == 2
    )
    return served


def words(data: dict[str, Any]) -> list[tuple[str, float, float]]:
    return [(w["word"], w["start"], w["end"]) for w in data["words"]]


def same_words(stitched: dict[str, Any], whole: dict[str, Any]) -> None:
    got, want = words(stitched), words(whole)
    assert [w for w, _, _ in got] == [w for w, _, _ in want]
    assert all(
        abs(a - c) <= 0.002 and abs(b - d) <= 0.002 for (_, a, b), (_, c, d) in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("ext", list(FORMATS))
def test_each_format_in_pieces_matches_the_whole_file(
    sandbox: Sandbox, recordings: dict[str, Path], ext: str
) -> None:
    hook = KubeAISpeechHook(retry=FAST)
    asked = {"response_format": "verbose_json", "timestamp_granularities": ["segment", "word"]}
    whole = hook.transcribe("whisper", str(recordings[ext]), **asked)
    before = sandbox.stats.snapshot()["transcriptions"]
    pieces = hook.transcribe("whisper", str(recordings[ext]), chunk_seconds=10, max_concurrency=4, **asked)
    assert whole.data is not None and pieces.data is not None
    assert len(whole.data["words"]) > 50
    same_words(pieces.data, whole.data)
    assert pieces.data["text"] == whole.data["text"]
    assert pieces.data["duration"] == pytest.approx(SECONDS, abs=0.1)
    assert pieces.pieces is not None and len(pieces.pieces) == 4
    assert sandbox.stats.snapshot()["transcriptions"] - before == 4
    assert pieces.attempts == 4 and pieces.bytes_sent > 4 * 10 * 32_000  # 16 kHz mono WAV pieces
    hook.close()


def test_srt_of_pieces_has_monotonic_offset_cues_covering_the_recording(
    sandbox: Sandbox, recordings: dict[str, Path]
) -> None:
    hook = KubeAISpeechHook(retry=FAST)
    mp3 = str(recordings["mp3"])
    whole = srt_cues(hook.transcribe("whisper", mp3, response_format="srt").content)
    cues = srt_cues(hook.transcribe("whisper", mp3, response_format="srt", chunk_seconds=10).content)
    starts = [start for start, _, _ in cues]
    assert starts == sorted(starts) and all(start < end for start, end, _ in cues)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues))  # no cue overlaps the next
    assert cues[0][0] < 2 and cues[-1][1] > SECONDS - 2
    assert max(start for start, _, _ in cues) > 30  # offsets applied: not every cue in 0-12 s
    assert " ".join(t for *_, t in cues).split() == " ".join(t for *_, t in whole).split()
    hook.close()


def test_a_short_recording_is_sent_whole(sandbox: Sandbox, recordings: dict[str, Path]) -> None:
    hook = KubeAISpeechHook(retry=FAST)
    result = hook.transcribe("whisper", str(recordings["m4a"]), chunk_seconds=60)
    assert result.pieces is None and result.attempts == 1
    assert result.bytes_sent > recordings["m4a"].stat().st_size  # the file itself, not decoded audio
    hook.close()


# -- the batch: pieces beside whole files, resume, corrupt inputs -------------------------------


def batch(out: Path, max_failed: float = 0, transcribe: Any = None) -> BatchTranscriber:
    hook = KubeAISpeechHook(retry=FAST)
    return make_batch(
        transcribe or hook.transcribe, "whisper", OutputFolder(out), logging.getLogger("t"),
        response_format="srt", max_concurrency=3, max_failed=max_failed, chunking=ChunkSettings(10, 2),
    )  # fmt: skip


def test_operator_transcribes_long_and_short_files_with_one_concurrency_limit(
    sandbox: Sandbox, run_dag: Any, recordings: dict[str, Path], tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "meeting.ogg").write_bytes(recordings["ogg"].read_bytes())
    short = make_wavs(inbox, 3, seconds=2.0)
    out = tmp_path / "out"
    result = run_dag(
        "test_invoke", audio=str(inbox), output=str(out), format="srt", concurrency=3, chunk_seconds=15
    )
    assert result.state == "success"
    assert result.xcom("transcribe")["succeeded"] == 4
    records = {Path(r["input"]).name: r for r in read_manifest_records(out)}
    pieces = records["meeting.ogg"]["pieces"]
    assert [(p["index"], p["attempts"], p["cached"]) for p in pieces] == [(i, 1, False) for i in range(3)]
    assert pieces[0]["start"] == 0 and pieces[-1]["end"] == pytest.approx(SECONDS, abs=0.1)
    assert all("pieces" not in records[p.name] for p in short)
    assert not (out / ".pieces").exists() or not any((out / ".pieces").iterdir())
    cues = srt_cues((out / "meeting.srt").read_text())
    assert cues[-1][1] > SECONDS - 2 and [c[0] for c in cues] == sorted(c[0] for c in cues)
    stats = sandbox.stats.snapshot()
    assert stats["outcomes"] == {"200": 6} and stats["max_in_flight"] <= 3


def test_a_rerun_sends_only_the_pieces_without_a_result(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path
) -> None:
    out, flac = tmp_path / "out", str(recordings["flac"])
    expected = KubeAISpeechHook(retry=FAST).transcribe("whisper", flac, response_format="srt").content
    hook = KubeAISpeechHook(retry=FAST)

    def third_piece_fails(model: str, audio: Any, **kwargs: Any) -> Any:
        if ".piece00002." in kwargs["filename"]:
            raise KubeAIEndpointError("HTTP 500 from KubeAI (after 3 attempts)", http_status=500, attempts=3)
        return hook.transcribe(model, audio, **kwargs)

    with pytest.raises(BatchFailed) as failed:
        batch(out, transcribe=third_piece_fails).run(resolve_inputs(flac))
    message = str(failed.value)
    assert re.search(r"piece 3 \(1\d\.\d-\d\d\.\d s\): HTTP 500 from KubeAI", message), message
    assert "finished piece(s) are kept in" in message and "a rerun sends only the others" in message
    first = read_manifest_records(out)[-1]
    assert first["status"] == "failed" and first["attempts"] == 3
    # no piece starts after one has failed; the fourth may have been in flight already
    kept = {p["index"] for p in first["pieces"]}
    assert kept in ({0, 1}, {0, 1, 3})
    assert len(list((out / ".pieces" / "meeting.srt").glob("piece-*.json"))) == len(kept)

    before = sandbox.stats.snapshot()["transcriptions"]
    summary = batch(out).run(resolve_inputs(flac))
    assert summary.count("ok") == 1
    assert sandbox.stats.snapshot()["transcriptions"] - before == 4 - len(kept)  # only the missing pieces
    second = read_manifest_records(out)[-1]
    assert [(p["index"], p["cached"]) for p in second["pieces"]] == [(i, i in kept) for i in range(4)]
    same_cues((out / "meeting.srt").read_text(), expected)
    assert not (out / ".pieces" / "meeting.srt").exists()


class BreaksAfter(io.RawIOBase):
    """A recording whose storage stops answering part way (a dropped connection to a bucket)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.file, self.limit = path.open("rb"), limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def readinto(self, buffer: Any) -> int:
        if self.file.tell() > self.limit:
            raise ConnectionResetError("connection reset by peer")
        return self.file.readinto(buffer)

    def close(self) -> None:
        self.file.close()
        super().close()


def test_a_read_failing_part_way_keeps_the_finished_pieces(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, mp3 = tmp_path / "out", recordings["mp3"]
    limit = mp3.stat().st_size * 6 // 10  # about 24 s of the 40
    with monkeypatch.context() as patch:
        patch.setattr(AudioInput, "opener", lambda self: lambda: io.BufferedReader(BreaksAfter(mp3, limit)))
        summary = batch(out, max_failed=1).run(resolve_inputs(str(mp3)))
    (failure,) = summary.failures
    assert failure.error == f"cannot read {str(mp3)!r}: ConnectionResetError: connection reset by peer"
    kept = len(list((out / ".pieces" / "meeting.srt").glob("piece-*.json")))
    assert kept == 2  # the pieces decoded before the failure were sent, and kept

    before = sandbox.stats.snapshot()["transcriptions"]
    assert batch(out).run(resolve_inputs(str(mp3))).count("ok") == 1
    assert sandbox.stats.snapshot()["transcriptions"] - before == 2


def test_a_killed_task_stops_sending_pieces_and_keeps_the_finished_ones(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path
) -> None:
    hook = KubeAISpeechHook(retry=FAST)
    runner: BatchTranscriber

    def killed_after_the_first_piece(model: str, audio: Any, **kwargs: Any) -> Any:
        result = hook.transcribe(model, audio, **kwargs)
        runner.stop.set()  # what on_kill does
        return result

    runner = make_batch(
        killed_after_the_first_piece, "whisper", OutputFolder(tmp_path), logging.getLogger("t"),
        response_format="vtt", max_concurrency=1, chunking=ChunkSettings(10, 2),
    )  # fmt: skip
    with pytest.raises(BatchFailed, match=r"Batch stopped \(task killed\)") as failed:
        runner.run(resolve_inputs(str(recordings["ogg"])))
    (failure,) = failed.value.summary.failures
    assert (failure.error or "").startswith(
        "stopped after 1 piece(s) (the task was killed); 1 finished piece(s)"
    )
    assert sandbox.stats.snapshot()["transcriptions"] == 1
    assert len(list((tmp_path / ".pieces" / "meeting.vtt").glob("piece-*.json"))) == 1


def test_a_rerun_after_every_piece_finished_stitches_without_sending(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write = OutputFolder.write

    def disk_full_for_transcripts(self: OutputFolder, name: str, content: str) -> str:
        if name == "meeting.srt":
            raise OSError(28, "No space left on device")
        return write(self, name, content)

    with monkeypatch.context() as patch:  # every piece is done and kept; the transcript is not written
        patch.setattr(OutputFolder, "write", disk_full_for_transcripts)
        with pytest.raises(OSError, match="No space left"):
            batch(out).run(resolve_inputs(str(recordings["wav"])))
    assert len(list((out / ".pieces" / "meeting.srt").glob("piece-*.json"))) == 4
    before = sandbox.stats.snapshot()["transcriptions"]
    summary = batch(out).run(resolve_inputs(str(recordings["wav"])))
    assert summary.count("ok") == 1 and sandbox.stats.snapshot()["transcriptions"] == before
    record = read_manifest_records(out)[-1]
    assert all(p["cached"] for p in record["pieces"]) and len(record["pieces"]) == 4


def test_a_corrupt_file_is_refused_before_anything_is_sent(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    good = inbox / "good.mp3"
    good.write_bytes(recordings["mp3"].read_bytes())
    broken = inbox / "broken.mp3"
    broken.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    with pytest.raises(BatchFailed) as failed:
        batch(tmp_path / "out").run(resolve_inputs(str(inbox)))
    assert "broken.mp3" in str(failed.value) and "cannot be decoded" in str(failed.value)
    assert "nothing was sent to KubeAI" in str(failed.value)
    assert sandbox.stats.snapshot()["transcriptions"] == 0
    summary = batch(tmp_path / "out", max_failed=1).run(resolve_inputs(str(inbox)))
    assert summary.count("ok") == 1 and (tmp_path / "out" / "good.srt").exists()
    (failure,) = summary.failures
    assert failure.input.endswith("broken.mp3") and "Fix: re-export it" in (failure.error or "")


def test_piece_results_are_plain_verbose_json(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(  # keep the cache: its files are what a rerun reads
        "airflow_provider_kubeai_speech.transcription.piece_cache.PieceCache.remove", lambda self: None
    )
    batch(out).run(resolve_inputs(str(recordings["wav"])))
    plan = json.loads((out / ".pieces" / "meeting.srt" / "plan.json").read_text())
    assert plan["fingerprint"]["chunk_seconds"] == 10 and len(plan["pieces"]) == 4
    piece = json.loads((out / ".pieces" / "meeting.srt" / "piece-00001.json").read_text())
    assert piece["piece"] == plan["pieces"][1] and piece["result"]["segments"]
    assert piece["result"]["words"] is None  # an SRT needs no word timestamps: pieces are not asked for them


# -- a real recogniser ---------------------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"


@pytest.mark.slow
def test_with_real_recognition_pieces_lose_no_words(make_kubeai_sandbox: Any, tmp_path: Path) -> None:
    """Three rounds of the Festival sample recordings (64 s) through pocketsphinx, whole and in 8 pieces."""
    import wave

    from scripts.demo import word_error_rate

    sandbox = make_kubeai_sandbox(startup_delay=0.1, engine="pocketsphinx")
    sandbox.store.create(NS, model_manifest("whisper", replicas=1, scaling={"min_replicas": 1}), "t")
    wait_until(
        lambda: (sandbox.store.get(NS, "whisper").get("status") or {}).get("replicas", {}).get("ready") == 1
    )
    frames, said = bytearray(), []
    for _ in range(3):
        for clip in sorted(SAMPLES.glob("*.wav")):
            with wave.open(str(clip)) as wav:
                frames += wav.readframes(wav.getnframes()) + b"\x00\x00" * 16_000  # a second's pause
            said.append(clip.with_suffix(".txt").read_text().strip())
    recording = tmp_path / "calls.wav"
    with wave.open(str(recording), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(bytes(frames))
    hook = KubeAISpeechHook(retry=FAST)
    whole = hook.transcribe("whisper", str(recording), response_format="text").content
    pieces = hook.transcribe("whisper", str(recording), response_format="text", chunk_seconds=10)
    reference = " ".join(said)
    assert word_error_rate(reference, whole) < 0.1
    assert word_error_rate(reference, pieces.content) <= word_error_rate(reference, whole) + 0.02
    assert pieces.pieces is not None and len(pieces.pieces) >= 6
    hook.close()


def test_pieces_are_kept_and_resumed_on_object_storage(
    sandbox: Sandbox, recordings: dict[str, Path], tmp_path: Path
) -> None:
    """The output on an object store (fsspec's in-memory one, attached like s3://): same behaviour."""
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    out = f"memory://bucket-{tmp_path.name}/subtitles"
    hook = KubeAISpeechHook(retry=FAST)

    def second_piece_fails(model: str, audio: Any, **kwargs: Any) -> Any:
        if ".piece00001." in kwargs["filename"]:
            raise KubeAIEndpointError("HTTP 503 from KubeAI", http_status=503, attempts=3)
        return hook.transcribe(model, audio, **kwargs)

    first = make_batch(
        second_piece_fails, "whisper", OutputFolder(out), logging.getLogger("t"),
        response_format="vtt", max_concurrency=1, chunking=ChunkSettings(10, 2),
    )  # fmt: skip
    with pytest.raises(BatchFailed):
        first.run(resolve_inputs(str(recordings["mp3"])))
    cache = ObjectStoragePath(f"{out}/.pieces/meeting.vtt")
    assert sorted(p.name for p in cache.iterdir()) == ["piece-00000.json", "plan.json"]

    before = sandbox.stats.snapshot()["transcriptions"]
    second = make_batch(
        hook.transcribe, "whisper", OutputFolder(out), logging.getLogger("t"),
        response_format="vtt", max_concurrency=1, chunking=ChunkSettings(10, 2),
    )  # fmt: skip
    assert second.run(resolve_inputs(str(recordings["mp3"]))).count("ok") == 1
    assert sandbox.stats.snapshot()["transcriptions"] - before == 3
    expected = hook.transcribe("whisper", str(recordings["mp3"]), response_format="vtt").content
    same_cues(ObjectStoragePath(f"{out}/meeting.vtt").read_text(), expected)
    assert not cache.exists()
    records = read_manifest_records(out)
    assert [r["status"] for r in records] == ["failed", "ok"]
    assert [p["cached"] for p in records[1]["pieces"]] == [True, False, False, False]


def test_pieces_of_a_replaced_recording_are_not_reused(sandbox: Sandbox, tmp_path: Path) -> None:
    from local_kubeai.recordings import write_recording

    wav = write_recording(tmp_path / "in" / "call.wav", 40, seed=1)
    out = tmp_path / "out"
    hook = KubeAISpeechHook(retry=FAST)

    def last_piece_fails(model: str, audio: Any, **kwargs: Any) -> Any:
        if ".piece00003." in kwargs["filename"]:
            raise KubeAIEndpointError("HTTP 503 from KubeAI", http_status=503, attempts=3)
        return hook.transcribe(model, audio, **kwargs)

    with pytest.raises(BatchFailed):
        batch(out, transcribe=last_piece_fails).run(resolve_inputs(str(wav)))
    assert len(list((out / ".pieces" / "call.srt").glob("piece-*.json"))) >= 1

    replaced = write_recording(tmp_path / "new" / "call.wav", 40, seed=2)
    assert replaced.stat().st_size == wav.stat().st_size  # same name, same size, other speech
    wav.write_bytes(replaced.read_bytes())
    before = sandbox.stats.snapshot()["transcriptions"]
    assert batch(out).run(resolve_inputs(str(wav))).count("ok") == 1
    assert sandbox.stats.snapshot()["transcriptions"] - before == 4  # nothing reused
    expected = hook.transcribe("whisper", str(replaced), response_format="srt").content
    same_cues((out / "call.srt").read_text(), expected)


def test_small_files_are_not_probed_and_are_sent_whole(sandbox: Sandbox, tmp_path: Path) -> None:
    small = tmp_path / "in" / "clip.mp3"
    small.parent.mkdir()
    small.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 2000)  # smaller than 10 s at 4 kbit/s
    summary = batch(tmp_path / "out", max_failed=1).run(resolve_inputs(str(small)))
    (failure,) = summary.failures
    assert "HTTP 400" in (failure.error or "") and "pieces" not in failure.to_json()
    assert sandbox.stats.snapshot()["outcomes"] == {"400": 1}  # sent whole, refused by the server
