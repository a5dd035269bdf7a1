"""The batch engine's integrity: output failures, concurrent tasks, the manifest, names, reruns, modes.

KubeAI is a fake callable here (each test counts what was sent); the output is real: local folders,
and fsspec's in-memory filesystem attached the way Airflow attaches s3://.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.io.store import _STORE_CACHE
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.hooks.endpoint import TranscriptionResult
from airflow_provider_kubeai_speech.transcription.batch import (
    BatchTranscriber,
    OutputFailed,
)
from airflow_provider_kubeai_speech.transcription.manifest import (
    MANIFEST_FOLDER,
    read_manifest_records,
    read_manifest_state,
)
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from tests.audio_files import make_wavs
from tests.batch_setup import make_batch

LOG = logging.getLogger("test")


class FakeKubeAI:
    """``hook.transcribe``-compatible: reads the upload, answers in the format asked for."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, model: str, audio: Any, **request: Any) -> TranscriptionResult:
        with self._lock:
            self.calls += 1
        with audio() if callable(audio) else open(audio, "rb") as handle:
            data = handle.read()
        if self.delay:
            time.sleep(self.delay)
        fmt = request["response_format"]
        text = f"{request['filename']} by {model} in {request.get('language')}"
        body: dict[str, Any] = {"text": text}
        if fmt == "verbose_json":
            body |= {"language": request.get("language"), "segments": [], "duration": 1.0}
        content = json.dumps(body) if fmt in ("json", "verbose_json") else text
        return TranscriptionResult(content, fmt, data=body if "json" in fmt else None, bytes_sent=len(data))


def batch(
    out: Any, fake: FakeKubeAI, *, model: str = "whisper", concurrency: int = 4, **options: Any
) -> BatchTranscriber:
    folder = out if isinstance(out, OutputFolder) else OutputFolder(out)
    return make_batch(
        fake, model, folder, LOG, run_id="manual__2026-12-01T00:00:00+00:00",
        max_concurrency=concurrency, progress_interval=3600, **options,
    )  # fmt: skip


def all_manifest_lines(out: Path) -> list[str]:
    """Every manifest line under ``out``, whatever the layout (the old single file or parts),
    split the way most readers split text."""
    return [
        line
        for path in sorted(out.rglob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def parsed(lines: list[str]) -> list[dict[str, Any]]:
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


# -- 10: a full disk stops the batch ------------------------------------------------------------


def test_a_full_disk_stops_the_batch_promptly_and_keeps_what_was_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC at the file system layer: fsync of transcripts fails after 50 (the manifest's small
    appends still fit). No more requests start, one clear provider error, every finished file recorded."""
    files = make_wavs(tmp_path / "in", 400, seconds=0.05)
    out = tmp_path / "out"
    real_fsync = os.fsync
    written = {"transcripts": 0}

    def full_disk_fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(".partial"):
            if written["transcripts"] >= 50:
                raise OSError(errno.ENOSPC, "No space left on device")
            written["transcripts"] += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_fsync)
    fake = FakeKubeAI()
    with pytest.raises(KubeAISpeechError) as raised:
        batch(out, fake, concurrency=4).run(resolve_inputs(str(tmp_path / "in")))
    assert isinstance(raised.value, OutputFailed)
    message = str(raised.value)
    assert "no space left on the device" in message and str(out) in message
    assert "50 transcript(s) were written" in message and "rerun with skip_existing=True" in message
    assert fake.calls <= 50 + 4 + 1  # the files in flight, not the 400
    on_disk = {p.stem for p in out.glob("*.json")}
    assert len(on_disk) == 50 and not list(out.glob(".*.partial"))
    state = read_manifest_state(out)
    assert {Path(u).stem for u, r in state.last.items() if r["status"] == "ok"} == on_disk

    monkeypatch.setattr(os, "fsync", real_fsync)  # space freed: the rerun sends only the rest
    again = FakeKubeAI()
    summary = batch(out, again).run(resolve_inputs(str(tmp_path / "in")))
    assert again.calls == 400 - 50 and summary.count("skipped") == 50 and summary.count("ok") == 350
    assert len(list(out.glob("*.json"))) == len(files)


class FlakyStore(MemoryFileSystem):
    """An in-memory object store that goes down for a while; counts manifest bytes moved."""

    protocol = ("flaky",)
    root_marker = "/"

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return str(super()._strip_protocol(path.removeprefix("flaky://")))

    store: dict[str, Any] = {}
    pseudo_dirs = [""]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down_at_write: int | None = None  # the store goes down at this write...
        self.down_for = 0.0  # ... for this many seconds
        self.down_since: float | None = None
        self.writes = 0
        self.manifest_writes = 0
        self.manifest_down = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        manifest = MANIFEST_FOLDER in path or path.endswith(".jsonl")
        if "w" in mode:
            self.writes += 1
            if (
                self.down_at_write is not None
                and self.writes >= self.down_at_write
                and self.down_since is None
            ):
                self.down_since = time.monotonic()
            if self.down_since is not None and time.monotonic() - self.down_since < self.down_for:
                raise EndpointConnectionError('Could not connect to the endpoint URL: "http://s3.test/"')
            self.manifest_writes += manifest
        handle = super()._open(path, mode, **kwargs)
        if manifest and "r" in mode:
            self.manifest_down += len(handle.getvalue())
        return handle

    def cat_file(self, path: str, start: Any = None, end: Any = None, **kwargs: Any) -> bytes:
        data = bytes(super().cat_file(path, start, end, **kwargs))
        if MANIFEST_FOLDER in path or path.endswith(".jsonl"):
            self.manifest_down += len(data)
        return data


class EndpointConnectionError(Exception):
    """botocore's, by name (botocore is not needed to recognise it)."""


@pytest.fixture
def store(tmp_path: Path) -> FlakyStore:
    import fsspec
    from airflow.sdk.io import attach

    fsspec.register_implementation("flaky", FlakyStore, clobber=True)
    _STORE_CACHE.pop("flaky", None)  # attach keeps the first store of a protocol
    fs = FlakyStore(skip_instance_cache=True)
    attach("flaky", fs=fs)
    return fs


def test_an_unreachable_output_store_stops_the_batch_and_the_rest_is_recorded(
    tmp_path: Path, store: FlakyStore
) -> None:
    make_wavs(tmp_path / "in", 200, seconds=0.05)
    out = f"flaky://transcripts-{tmp_path.name}/day"
    store.down_at_write, store.down_for = 31, 1.0  # a second's outage after 30 transcripts
    fake = FakeKubeAI()
    with pytest.raises(OutputFailed) as raised:
        batch(out, fake).run(resolve_inputs(str(tmp_path / "in")))
    message = str(raised.value)
    assert "the store cannot be reached (EndpointConnectionError" in message
    assert f"transcripts-{tmp_path.name}/day/" in message
    assert "botocore" not in message and "Traceback" not in message
    assert fake.calls <= 30 + 4 + 1
    ok = raised.value.summary.count("ok")
    records = read_manifest_records(out)  # the outage is over by the final flush: all recorded
    assert (
        len(records) == len(raised.value.summary.results) and sum(r["status"] == "ok" for r in records) == ok
    )

    again = FakeKubeAI()
    summary = batch(out, again).run(resolve_inputs(str(tmp_path / "in")))
    assert again.calls == 200 - ok and summary.count("ok") + summary.count("skipped") == 200


# -- #15.4: the manifest on an object store costs the same per record at 500 and 2000 ------------


@pytest.mark.parametrize("count", [500, 2000])
def test_manifest_bytes_moved_per_record_stay_flat(tmp_path: Path, store: FlakyStore, count: int) -> None:
    make_wavs(tmp_path / "in", count, seconds=0.01)
    out = f"flaky://transcripts-{tmp_path.name}/day"
    summary = batch(out, FakeKubeAI(), concurrency=8).run(resolve_inputs(str(tmp_path / "in")))
    assert summary.count("ok") == count
    assert store.manifest_down == 0  # nothing re-read while appending
    parts = store.ls(f"/transcripts-{tmp_path.name}/day/{MANIFEST_FOLDER}", detail=False)
    assert (
        len(parts) == -(-count // 100) == store.manifest_writes
    )  # one object per 100 records, each written once
    up = sum(len(store.cat_file(part)) for part in parts)
    records = read_manifest_records(out)
    assert len(records) == count
    line = len(json.dumps(records[0])) + 1
    print(f"\n{count} records: {up / count:.0f} B up and 0 B down per record (a line is {line} B)")
    assert up / count < 1.1 * line


def test_two_tasks_writing_one_remote_folder_lose_no_line(tmp_path: Path, store: FlakyStore) -> None:
    make_wavs(tmp_path / "a", 200, seconds=0.01, prefix="a")
    make_wavs(tmp_path / "b", 200, seconds=0.01, prefix="b")
    out = f"flaky://transcripts-{tmp_path.name}/day"
    errors: list[BaseException] = []

    def task(folder: str) -> None:
        try:
            batch(out, FakeKubeAI(delay=0.001)).run(resolve_inputs(str(tmp_path / folder)))
        except BaseException as err:
            errors.append(err)

    # upath makes the class of a filesystem it does not know on first use: two threads doing it at
    # once get two classes, and joining paths of the two fails. Real stores (s3, gs) are registered.
    OutputFolder(out).subfolder("warm-up")
    threads = [threading.Thread(target=task, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    state = read_manifest_state(out)
    assert len(state.last) == 400 and {r["status"] for r in state.last.values()} == {"ok"}


# -- 11: two tasks, one local folder, separate processes ----------------------------------------

_SLOW_WRITER = """
import os, sys, time
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
real_fsync = os.fsync
def slow_fsync(fd):
    time.sleep(1.5)  # a slow disk: the partial file lives long enough for another task to see it
    real_fsync(fd)
os.fsync = slow_fsync
OutputFolder(sys.argv[1]).write("c0006.json", '{"text": "hello"}')
"""


def test_a_task_never_removes_another_live_tasks_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(out)], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not list(out.glob(".*.partial")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(out.glob(".*.partial")), "the writer never started"
    # Another task starts on the same folder (its own process): it cleans up, then transcribes.
    starter = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder; "
            "print(OutputFolder(sys.argv[1]).remove_partials())",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert starter.stdout.strip().splitlines()[-1] == "0"
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == 0, stderr
    assert json.loads((out / "c0006.json").read_text()) == {"text": "hello"}


def test_partial_files_of_dead_or_old_owners_are_removed(tmp_path: Path) -> None:
    from airflow_provider_kubeai_speech.transcription.outputs import _host

    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    dead = out / f".a.json.0123abcd.{dead_pid}@{_host()}.partial"
    other_host = out / f".b.json.0123abcd.{os.getpid()}@elsewhere.partial"
    old = out / f".c.json.0123abcd.{os.getpid()}@elsewhere.partial"
    mine = out / f".d.json.0123abcd.{os.getpid()}@{_host()}.partial"  # a thread of this process writes it
    for path in (dead, other_host, old, mine):
        path.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert OutputFolder(out).remove_partials() == 2
    assert sorted(p.name for p in out.iterdir()) == sorted([other_host.name, mine.name])


# -- 12: manifest lines every reader splits the same way, never glued -------------------------


def test_manifest_lines_survive_str_splitlines_with_unicode_line_separators(tmp_path: Path) -> None:
    names = ["a\u2028b.wav", "c\x85d.wav", "e\u2029f.wav", "g\x1ch.wav"]
    for name in names:
        make_wavs(tmp_path / "in", 1, seconds=0.05)[0].rename(tmp_path / "in" / name)
    out = tmp_path / "out"
    batch(out, FakeKubeAI()).run(resolve_inputs(str(tmp_path / "in")))
    lines = all_manifest_lines(out)
    assert len(lines) == 4 and all(line.isascii() for line in lines)
    assert sorted(Path(r["input"]).name for r in parsed(lines)) == sorted(names)


def test_a_torn_last_line_is_not_glued_to_the_next_record(tmp_path: Path) -> None:
    make_wavs(tmp_path / "in", 3, seconds=0.05)
    out = tmp_path / "out"
    out.mkdir()
    # An earlier version's manifest, cut by a failed write (no trailing newline).
    (out / "_transcriptions.jsonl").write_text('{"input": "/old/x.wav", "output": "/out/x.json", "sta')
    batch(out, FakeKubeAI()).run(resolve_inputs(str(tmp_path / "in")))
    records = parsed(all_manifest_lines(out))
    assert len(records) == 3 and {r["status"] for r in records} == {"ok"}
    assert len(read_manifest_records(out)) == 3


def test_the_writer_ends_a_line_a_failed_write_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kubeai_speech.transcription.manifest import ManifestWriter
    from airflow_provider_kubeai_speech.transcription.outputs import OutputStorageError

    writer = ManifestWriter(OutputFolder(tmp_path), "run")
    writer.open()
    writer.append(json.dumps({"input": "/in/1.wav", "status": "ok"}))
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OutputStorageError, match="no space left"):
        writer.append(json.dumps({"input": "/in/2.wav", "status": "ok"}))
    monkeypatch.setattr(os, "write", real_write)
    writer.append(json.dumps({"input": "/in/3.wav", "status": "ok"}))
    writer.close()
    assert [r["input"] for r in read_manifest_records(tmp_path)] == ["/in/1.wav", "/in/3.wav"]


# -- 13: names unique by construction ------------------------------------------------------------


def test_a_file_named_like_another_files_hashed_name_loses_nothing(tmp_path: Path) -> None:
    from airflow_provider_kubeai_speech.transcription.outputs import output_names

    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    make_wavs(tmp_path / "x", 1, prefix="a")[0].rename(tmp_path / "x" / "a.wav")
    make_wavs(tmp_path / "y", 1, prefix="a")[0].rename(tmp_path / "y" / "a.wav")
    hashed = output_names([str(tmp_path / "x" / "a.wav"), str(tmp_path / "y" / "a.wav")], "json")[0]
    crafted = tmp_path / "z" / (hashed.removesuffix(".json") + ".wav")
    crafted.parent.mkdir()
    crafted.write_bytes((tmp_path / "x" / "a.wav").read_bytes())
    out = tmp_path / "out"
    summary = batch(out, FakeKubeAI()).run(resolve_inputs([str(tmp_path / d) for d in "xyz"]))
    assert summary.count("ok") == 3 and len(list(out.glob("*.json"))) == 3
    assert len({r.output for r in summary.results}) == 3


# -- 14: what decides a skip ---------------------------------------------------------------------


def test_a_rerun_in_another_format_with_the_same_extension_is_not_skipped(tmp_path: Path) -> None:
    make_wavs(tmp_path / "in", 3, seconds=0.05)
    out = tmp_path / "out"
    batch(out, FakeKubeAI(), response_format="json").run(resolve_inputs(str(tmp_path / "in")))
    second = FakeKubeAI()
    summary = batch(out, second, response_format="verbose_json").run(resolve_inputs(str(tmp_path / "in")))
    assert second.calls == 3 and summary.count("ok") == 3
    assert all("segments" in json.loads(p.read_text()) for p in out.glob("*.json"))
    third = FakeKubeAI()
    summary = batch(out, third, response_format="verbose_json").run(resolve_inputs(str(tmp_path / "in")))
    assert third.calls == 0 and summary.count("skipped") == 3


@pytest.mark.parametrize(
    "change",
    [
        {"model": "whisper-large"},
        {"language": "nl"},
        {"prompt": "names: Anouk"},
        {"temperature": 0.2},
        {"extra_fields": {"hotwords": "KubeAI"}},
        {"timestamp_granularities": ["word"]},
    ],
)
def test_a_rerun_with_other_settings_is_sent_again(tmp_path: Path, change: dict[str, Any]) -> None:
    make_wavs(tmp_path / "in", 2, seconds=0.05)
    out = tmp_path / "out"
    batch(out, FakeKubeAI()).run(resolve_inputs(str(tmp_path / "in")))
    again = FakeKubeAI()
    model = change.pop("model", "whisper")
    batch(out, again, model=model, **change).run(resolve_inputs(str(tmp_path / "in")))
    assert again.calls == 2


def test_a_replaced_or_deleted_transcript_or_recording_is_sent_again(tmp_path: Path) -> None:
    files = make_wavs(tmp_path / "in", 3, seconds=0.05)
    out = tmp_path / "out"
    batch(out, FakeKubeAI()).run(resolve_inputs(str(tmp_path / "in")))
    os.utime(files[0], ns=(time.time_ns(), time.time_ns() + 10**9))  # the recording replaced
    (out / f"{files[1].stem}.json").unlink()  # the transcript deleted
    again = FakeKubeAI()
    summary = batch(out, again).run(resolve_inputs(str(tmp_path / "in")))
    assert again.calls == 2 and summary.count("skipped") == 1


# -- 15: usual file modes ------------------------------------------------------------------------


def test_transcripts_manifest_and_pieces_get_the_umask_mode(tmp_path: Path) -> None:
    make_wavs(tmp_path / "in", 2, seconds=0.05)
    out = tmp_path / "out"
    previous = os.umask(0o027)
    try:
        batch(out, FakeKubeAI()).run(resolve_inputs(str(tmp_path / "in")))
        OutputFolder(out / ".pieces" / "x").prepare()
        OutputFolder(out / ".pieces" / "x").write("piece-00000.json", "{}")
    finally:
        os.umask(previous)
    files = [
        *out.glob("*.json"),
        *(out / MANIFEST_FOLDER).glob("*.jsonl"),
        out / ".pieces" / "x" / "piece-00000.json",
    ]
    assert len(files) == 4
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o640}


# -- #15.5: storage failures on the input side are per-file failures ----------------------------


class ArchivedStore(MemoryFileSystem):
    """An object store where one object is archived once it has been checked."""

    protocol = ("archived",)
    root_marker = "/"

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return str(super()._strip_protocol(path.removeprefix("archived://")))

    store: dict[str, Any] = {}
    pseudo_dirs = [""]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        # The check reads the header by cat_file (still fine); opening it for the upload fails.
        if "r" in mode and path.endswith("cold.wav"):
            from botocore.exceptions import ClientError
            from s3fs.errors import translate_boto_error

            error = ClientError(
                {
                    "Error": {
                        "Code": "InvalidObjectState",
                        "Message": "The operation is not valid for the object's storage class",
                        "StorageClass": "GLACIER",
                    }
                },
                "GetObject",
            )
            raise translate_boto_error(error)
        return super()._open(path, mode, **kwargs)


def test_an_object_archived_after_the_check_is_a_per_file_failure_naming_it(tmp_path: Path) -> None:
    import fsspec
    from airflow.sdk.io import attach

    fsspec.register_implementation("archived", ArchivedStore, clobber=True)
    _STORE_CACHE.pop("archived", None)
    fs = ArchivedStore(skip_instance_cache=True)
    attach("archived", fs=fs)
    wavs = make_wavs(tmp_path / "in", 3, seconds=0.05)
    for wav in wavs:
        fs.pipe_file(f"/calls-{tmp_path.name}/{wav.name}", wav.read_bytes())
    fs.pipe_file(f"/calls-{tmp_path.name}/cold.wav", wavs[0].read_bytes())
    fake = FakeKubeAI()
    summary = batch(tmp_path / "out", fake, max_failed=1).run(
        resolve_inputs(f"archived://calls-{tmp_path.name}/*.wav")
    )
    (failure,) = summary.failures
    assert "archived (storage class GLACIER): restore it first" in (failure.error or "")
    assert summary.count("ok") == 3


# -- 14: the piece cache is keyed by every setting that changes a piece's result ----------------


def test_pieces_transcribed_with_another_language_or_model_are_not_reused(
    make_kubeai_sandbox: Any, tmp_path: Path
) -> None:
    from airflow_provider_kubeai_speech.exceptions import KubeAIEndpointError
    from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
    from airflow_provider_kubeai_speech.transcription.batch import BatchFailed
    from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
    from local_kubeai.recordings import write_recording
    from local_kubeai.testing import wait_until
    from tests.integration.conftest import model_manifest

    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    for name in ("whisper", "whisper-large"):
        sandbox.store.create("kubeai", model_manifest(name, replicas=1, scaling={"min_replicas": 1}), "t")
    wait_until(
        lambda: all(
            (sandbox.store.get("kubeai", n).get("status") or {}).get("replicas", {}).get("ready") == 1
            for n in ("whisper", "whisper-large")
        )
    )
    wav = write_recording(tmp_path / "in" / "call.wav", 40, seed=1)
    out = tmp_path / "out"
    hook = KubeAISpeechHook(retry=RetrySettings(max_attempts=2, backoff_factor=0.01, backoff_max=0.02))

    def last_piece_fails(model: str, audio: Any, **kwargs: Any) -> Any:
        if ".piece00003." in kwargs["filename"]:
            raise KubeAIEndpointError("HTTP 503 from KubeAI", http_status=503, attempts=2)
        return hook.transcribe(model, audio, **kwargs)

    def run(transcribe: Any, model: str = "whisper", **options: Any) -> Any:
        batch = make_batch(
            transcribe, model, OutputFolder(out), LOG,
            response_format="srt", max_concurrency=2, chunking=ChunkSettings(10, 2), **options,
        )  # fmt: skip
        return batch.run(resolve_inputs(str(wav)))

    with pytest.raises(BatchFailed):
        run(last_piece_fails)
    assert len(list((out / ".pieces" / "call.srt").glob("piece-*.json"))) >= 2
    before = sandbox.stats.snapshot()["transcriptions"]
    with pytest.raises(BatchFailed):
        run(last_piece_fails, language="nl")  # another language: the English pieces are not used
    assert sandbox.stats.snapshot()["transcriptions"] - before >= 2
    before = sandbox.stats.snapshot()["transcriptions"]
    assert run(hook.transcribe, model="whisper-large", language="nl").count("ok") == 1
    assert sandbox.stats.snapshot()["transcriptions"] - before == 4  # another model: nothing reused
    before = sandbox.stats.snapshot()["transcriptions"]
    assert run(hook.transcribe, model="whisper-large", language="nl").count("skipped") == 1
    assert sandbox.stats.snapshot()["transcriptions"] == before
    hook.close()


# -- 10/13: a name the folder refuses fails that file only; an input listed twice is sent once --


def test_a_transcript_name_leading_outside_the_folder_fails_that_file_only(tmp_path: Path) -> None:
    files = make_wavs(tmp_path / "in", 3, seconds=0.05)
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere" / "x.json", out / f"{files[0].stem}.json")
    for _ in range(2):  # the first run, then a skip-rerun over the same folder
        fake = FakeKubeAI()
        summary = batch(out, fake, max_failed=1).run(resolve_inputs(str(tmp_path / "in")))
        (failure,) = summary.failures
        assert failure.input == str(files[0]) and "resolves outside" in (failure.error or "")
        assert summary.count("ok") + summary.count("skipped") == 2
    assert not (tmp_path / "elsewhere" / "x.json").exists()


def test_an_input_listed_twice_is_sent_once(tmp_path: Path) -> None:
    files = make_wavs(tmp_path / "in", 3, seconds=0.05)
    fake = FakeKubeAI()
    inputs = resolve_inputs([str(tmp_path / "in"), str(files[1]), str(tmp_path / "in" / "*.wav")])
    summary = batch(tmp_path / "out", fake).run(inputs)
    assert fake.calls == 3 and summary.count("ok") == 3
    assert sorted(r.input for r in summary.results) == sorted(str(f) for f in files)


def test_an_output_failure_while_pieces_are_kept_stops_sending_pieces(
    make_kubeai_sandbox: Any, tmp_path: Path, store: FlakyStore
) -> None:
    from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
    from airflow_provider_kubeai_speech.transcription.long_audio import ChunkSettings
    from local_kubeai.recordings import write_recording
    from local_kubeai.testing import wait_until
    from tests.integration.conftest import model_manifest

    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    sandbox.store.create("kubeai", model_manifest("whisper", replicas=1, scaling={"min_replicas": 1}), "t")
    wait_until(
        lambda: (
            (sandbox.store.get("kubeai", "whisper").get("status") or {}).get("replicas", {}).get("ready") == 1
        )
    )
    wav = write_recording(tmp_path / "in" / "meeting.wav", 80, seed=3)
    hook = KubeAISpeechHook(retry=RetrySettings(max_attempts=2, backoff_factor=0.01, backoff_max=0.02))
    out = f"flaky://transcripts-{tmp_path.name}/day"
    store.down_at_write, store.down_for = 3, 1.0  # the plan and one piece are kept, then the store is down
    with pytest.raises(OutputFailed, match="the store cannot be reached"):
        make_batch(
            hook.transcribe,
            "whisper",
            OutputFolder(out),
            LOG,
            response_format="srt",
            max_concurrency=1,
            chunking=ChunkSettings(10, 2),
        ).run(resolve_inputs(str(wav)))
    assert sandbox.stats.snapshot()["transcriptions"] <= 3  # not the 8 pieces
    hook.close()


def test_a_failure_message_cannot_forge_log_lines(tmp_path: Path) -> None:
    """Issue 14.5: names with newlines and errors with CR or ANSI escapes are escaped in BatchFailed."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    forged = inputs / "call\nERROR forged\x1b[2K.wav"
    forged.write_bytes(b"not audio at all, just text")
    fake = FakeKubeAI()
    with pytest.raises(KubeAISpeechError) as caught:
        batch(tmp_path / "out", fake).run(resolve_inputs(str(inputs)))
    message = str(caught.value)
    assert fake.calls == 0
    assert "\x1b" not in message and "\nERROR forged" not in message
    assert "call\\nERROR forged\\x1b[2K.wav" in message


def test_partial_owners_are_told_apart_by_their_whole_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pods of one DAG share long host-name prefixes (and small pids): the owner records the whole
    name, hashed, so one pod never takes another's live partial for its own dead process's."""
    from airflow_provider_kubeai_speech.transcription import outputs

    prefix = "kubeai-batch-transcription-transcribe-day-"
    monkeypatch.setattr(outputs.socket, "gethostname", lambda: prefix + "a1b2c3d4")
    first = outputs._host()
    monkeypatch.setattr(outputs.socket, "gethostname", lambda: prefix + "e5f6a7b8")
    assert outputs._host() != first


def test_a_task_whose_shared_piece_cache_another_task_removed_keeps_going(tmp_path: Path) -> None:
    """Two tasks transcribing the same long recording into one folder share its piece cache; when
    one finishes and removes it, the other's next piece is kept all the same, and its output is
    not taken for failed."""
    from airflow_provider_kubeai_speech.transcription.piece_cache import PieceCache
    from airflow_provider_kubeai_speech.transcription.splitter import Piece

    output = OutputFolder(tmp_path / "out")
    output.prepare()
    first = PieceCache.for_output(output, "meeting.srt", {"input": "/in/meeting.ogg"})
    second = PieceCache.for_output(output, "meeting.srt", {"input": "/in/meeting.ogg"})
    first.open()
    second.open()
    piece = Piece(index=0, start=0, end=16_000, keep_from=0.0, keep_until=None)
    first.remove()  # the first task wrote its transcript
    second.put(piece, {"text": "hello", "segments": []}, attempts=1)
    assert output.failure is None
    assert second.get(piece) is not None
