"""InvokeSpeechOperator end to end (dag.test) and the batch engine under faults and kills."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.transcription.manifest import (
    MANIFEST_FOLDER,
    read_manifest_records,
    read_manifest_state,
)
from local_kubeai import Sandbox
from local_kubeai.engines import fake_transcript_text, file_digest
from local_kubeai.testing import wait_until
from tests.audio_files import make_wav, make_wavs
from tests.dag_runner import start_dag_in_child
from tests.integration.conftest import model_manifest

NS = "kubeai"
SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"


def serve(sandbox: Sandbox, replicas: int = 2, name: str = "whisper") -> None:
    sandbox.store.create(
        NS, model_manifest(name, replicas=replicas, scaling={"min_replicas": replicas}), "test"
    )
    wait_until(
        lambda: (sandbox.store.get(NS, name).get("status") or {}).get("replicas", {}).get("ready") == replicas
    )


def manifest(out: Path) -> list[dict[str, Any]]:
    return read_manifest_records(out)


def test_a_batch_of_200_is_transcribed_exactly(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, latency_per_request=0.02)
    serve(sandbox)
    files = make_wavs(tmp_path / "in", 200)
    out = tmp_path / "out"
    result = run_dag(
        "test_invoke", audio=str(tmp_path / "in" / "*.wav"), output=str(out), format="text", concurrency=8
    )
    assert result.state == "success"
    summary = result.xcom("transcribe")
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["skipped"]) == (200, 200, 0, 0)
    assert summary["manifest_uri"] == str(out / MANIFEST_FOLDER)
    for wav in files:
        assert (out / f"{wav.stem}.txt").read_text() == fake_transcript_text(wav.read_bytes())
    records = manifest(out)
    assert (
        len(records) == 200
        and {r["status"] for r in records} == {"ok"}
        and len({r["input"] for r in records}) == 200
    )
    stats = sandbox.stats.snapshot()
    assert stats["max_in_flight"] == 8 and stats["outcomes"] == {"200": 200}


def test_faults_are_survived_without_duplicates(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, seed=42)
    serve(sandbox)
    sandbox.faults.update({"status_rates": {"503": 0.2}, "drop_rate": 0.05})
    files = make_wavs(tmp_path / "in", 200)
    out = tmp_path / "out"
    result = run_dag(
        "test_invoke", audio=[str(f) for f in files], output=str(out), concurrency=8, attempts=10
    )
    assert result.state == "success" and result.xcom("transcribe")["succeeded"] == 200
    for wav in files:
        assert json.loads((out / f"{wav.stem}.json").read_text()) == {
            "text": fake_transcript_text(wav.read_bytes())
        }
    records = manifest(out)
    assert len(records) == 200 and len({r["input"] for r in records}) == 200
    outcomes = sandbox.stats.snapshot()["outcomes"]
    assert outcomes["503"] > 0 and outcomes["dropped"] > 0 and outcomes["200"] == 200
    assert sum(r["attempts"] for r in records) == 200 + outcomes["503"] + outcomes["dropped"]


def test_bad_inputs_are_reported_per_file_and_nothing_done_is_lost(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    serve(sandbox)
    good = make_wavs(tmp_path / "in", 5)
    (tmp_path / "in" / "empty.wav").write_bytes(b"")
    (tmp_path / "in" / "notes.wav").write_text("these are meeting notes, not audio")
    (tmp_path / "in" / "folder.wav").mkdir()
    corrupt = tmp_path / "in" / "corrupt.wav"
    corrupt.write_bytes(
        good[0].read_bytes()[:12] + b"\x00" * 8
    )  # RIFF/WAVE magic, broken body: the server says 400
    audio = [*map(str, good), str(tmp_path / "in" / "missing.wav"), str(tmp_path / "in" / "empty.wav"), str(tmp_path / "in" / "notes.wav"),
             str(tmp_path / "in" / "folder.wav"), "ftpx://host/a.wav", str(corrupt)]  # fmt: skip
    out = tmp_path / "out"
    result = run_dag("test_invoke", audio=audio, output=str(out), max_failed=6)
    assert result.state == "success"
    summary = result.xcom("transcribe")
    assert (summary["succeeded"], summary["failed"]) == (5, 6)
    errors = {Path(f["input"]).name: f["error"] for f in summary["failures"]}
    assert "no such file" in errors["missing.wav"]
    assert "is empty (0 bytes)" in errors["empty.wav"]
    assert "is not audio KubeAI can decode" in errors["notes.wav"]
    assert "holds no audio files" in errors["folder.wav"]  # a folder is searched for audio
    assert "unsupported URI scheme 'ftpx://'" in errors["a.wav"]
    assert "HTTP 400" in errors["corrupt.wav"] and "Failed to decode audio" in errors["corrupt.wav"]
    assert sandbox.stats.snapshot()["outcomes"] == {"200": 5, "400": 1}  # the 400 was not retried

    # The same batch with max_failed=0 stops before sending anything: 5 problems are known up front.
    sandbox.stats.reset()
    failed = run_dag("test_invoke", audio=audio, output=str(tmp_path / "out2"), max_failed=0)
    assert failed.state == "failed" and sandbox.stats.snapshot()["transcriptions"] == 0


def test_failure_budget_stops_early_and_keeps_finished_work(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, latency_per_request=0.02)
    serve(sandbox)
    files = make_wavs(tmp_path / "in", 60)
    out = tmp_path / "out"
    sandbox.faults.update({"status_rates": {"500": 0.5}})
    result = run_dag(
        "test_invoke", audio=str(tmp_path / "in"), output=str(out), max_failed=0.1, attempts=1, concurrency=2
    )
    assert result.state == "failed"
    records = manifest(out)
    written = [r for r in records if r["status"] == "ok"]
    assert 0 < len(written) < 60 and len(records) < 60  # stopped early
    for record in written:
        wav = Path(record["input"])
        assert json.loads(Path(record["output"]).read_text())["text"] == fake_transcript_text(
            wav.read_bytes()
        )
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no partial files

    # The rerun sends only what is missing.
    sandbox.faults.reset()
    sandbox.stats.reset()
    rerun = run_dag("test_invoke", audio=str(tmp_path / "in"), output=str(out))
    assert rerun.state == "success"
    summary = rerun.xcom("transcribe")
    assert summary["skipped"] == len(written) and summary["succeeded"] == 60 - len(written)
    assert sandbox.stats.snapshot()["transcriptions"] == 60 - len(written)
    assert all((out / f"{f.stem}.json").exists() for f in files)


@pytest.mark.slow
def test_a_killed_batch_resumes_without_resending_finished_files(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, latency_per_request=0.03)
    serve(sandbox)
    files = make_wavs(tmp_path / "in", 300)
    out = tmp_path / "out"
    run_dag(
        "test_invoke", audio=[str(files[0])], output=str(tmp_path / "warm")
    )  # the database exists for the child
    sandbox.stats.reset()
    conf = {"audio": str(tmp_path / "in" / "*.wav"), "output": str(out), "concurrency": 4}
    child = start_dag_in_child("test_invoke", conf)
    try:
        wait_until(lambda: out.exists() and len(list(out.glob("*.json"))) >= 100, timeout=120)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
    on_disk = {p.stem for p in out.glob("*.json")}
    assert 100 <= len(on_disk) < 300
    for path in out.glob("*.json"):  # every file under its final name is complete
        assert json.loads(path.read_text())["text"]
    # Done = written and recorded. A transcript whose manifest record the kill cut off (at most
    # the files in flight) cannot prove its settings, so the rerun sends it once more.
    recorded = read_manifest_state(out)
    done_before = {Path(uri).stem for uri, record in recorded.last.items() if record["status"] == "ok"}
    assert done_before <= on_disk and len(on_disk - done_before) <= 4  # concurrency 4
    first_run = dict(sandbox.stats.snapshot()["completed_by_digest"])

    result = run_dag("test_invoke", **conf)
    assert result.state == "success"
    summary = result.xcom("transcribe")
    assert summary["skipped"] == len(done_before) and summary["succeeded"] == 300 - len(done_before)
    total = sandbox.stats.snapshot()["completed_by_digest"]
    for wav in files:
        digest = file_digest(wav)
        if wav.stem in done_before:
            assert total[digest] == 1, f"{wav.name} was finished before the kill but sent again"
        assert json.loads((out / f"{wav.stem}.json").read_text()) == {
            "text": fake_transcript_text(wav.read_bytes())
        }
    assert sum(first_run.values()) >= len(done_before)
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


def test_colliding_names_unicode_and_long_names(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    serve(sandbox)
    a = make_wav(tmp_path / "site-a" / "call.wav", seed=1)
    b = make_wav(tmp_path / "site-b" / "call.wav", seed=2)
    uni = make_wav(tmp_path / "réunion d'équipe ☎.wav", seed=3)
    long = make_wav(tmp_path / ("x" * 240 + ".wav"), seed=4)
    out = tmp_path / "out"
    result = run_dag(
        "test_invoke", audio=[str(a), str(b), str(uni), str(long)], output=str(out), format="text"
    )
    assert result.state == "success"
    written = {p.name: p.read_text() for p in out.glob("*.txt")}
    assert len(written) == 4
    calls = [name for name in written if name.startswith("call--")]
    assert len(calls) == 2 and {written[c] for c in calls} == {
        fake_transcript_text(a.read_bytes()),
        fake_transcript_text(b.read_bytes()),
    }
    assert "réunion d'équipe ☎.txt" in written
    assert all(len(name.encode()) <= 204 for name in written)


def test_transcripts_to_xcom_for_small_batches_only(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    serve(sandbox)
    files = make_wavs(tmp_path / "in", 3)
    result = run_dag("test_invoke", audio=[str(f) for f in files], format="text")
    summary = result.xcom("transcribe")
    assert [t["text"] for t in summary["transcripts"]] == [
        fake_transcript_text(f.read_bytes()) for f in files
    ]
    assert summary["output_uri"] is None
    many = make_wavs(tmp_path / "many", 101)
    sandbox.stats.reset()
    assert run_dag("test_invoke", audio=[str(f) for f in many]).state == "failed"
    assert sandbox.stats.snapshot()["transcriptions"] == 0


@pytest.mark.slow
def test_real_speech_through_the_operator(make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path) -> None:
    sandbox = make_kubeai_sandbox(engine="pocketsphinx", startup_delay=0.1)
    serve(sandbox, replicas=1)
    out = tmp_path / "out"
    result = run_dag(
        "test_invoke", audio=str(SAMPLES / "*.wav"), output=str(out), format="verbose_json", concurrency=2
    )
    assert result.state == "success"
    heard = json.loads((out / "call-003.json").read_text())
    assert heard["text"] == "the delivery was scheduled for next monday morning"
    assert heard["segments"][0]["start"] < heard["segments"][-1]["end"] <= heard["duration"]
