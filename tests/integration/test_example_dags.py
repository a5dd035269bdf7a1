"""Every example DAG runs end to end with dag.test() against the sandbox, and its outputs are checked."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pendulum

from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_records
from local_kubeai.engines import fake_transcript_text
from tests.long_audio_files import srt_cues

SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
NS = "kubeai"


def added(sandbox: Any, name: str) -> dict[str, Any]:
    """The Model as first stored (the example may delete it before the test looks)."""
    events, _ = sandbox.store.watch_from(0)
    return next(obj for _, kind, obj in events if kind == "ADDED" and obj["metadata"]["name"] == name)


def test_batch_transcription(make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.5)
    day = pendulum.datetime(2026, 11, 24, tz="UTC")
    inbox = tmp_path / "calls" / "2026-11-24"
    shutil.copytree(SAMPLES, inbox, ignore=shutil.ignore_patterns("*.txt"))
    result = run_dag(
        "kubeai_batch_transcription",
        logical_date=day,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert result.state == "success", result.tis
    summary = result.xcom("transcribe_day")
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (5, 5, 0)
    out = tmp_path / "out" / "2026-11-24"
    for wav in SAMPLES.glob("*.wav"):
        assert json.loads((out / f"{wav.stem}.json").read_text()) == {
            "text": fake_transcript_text(wav.read_bytes())
        }
    assert len(read_manifest_records(out)) == 5
    model = sandbox.store.get(NS, "whisper-small-en")
    assert (model["spec"]["replicas"], model["spec"]["minReplicas"]) == (0, 0)  # scaled to zero, cache kept
    assert model["spec"]["resourceProfile"] == "cpu:2" and model["spec"]["targetRequests"] == 4


def test_warm_model_from_xcom(make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3)
    inbox = tmp_path / "inbox"
    shutil.copytree(SAMPLES, inbox, ignore=shutil.ignore_patterns("*.txt"))
    (inbox / "notes.txt").write_text("not listed: the upstream task picks audio only")
    result = run_dag("kubeai_warm_model_from_xcom", inbox=str(inbox), outbox=str(tmp_path / "outbox"))
    assert result.state == "success"
    srts = sorted((tmp_path / "outbox").glob("*.srt"))
    assert [p.stem for p in srts] == sorted(p.stem for p in SAMPLES.glob("*.wav"))
    # KubeAI's server keeps a segment's leading space in its cue
    assert all(re.match(r"1\n00:00:0\d,\d{3} --> 00:00:\d\d,\d{3}\n ?\w", p.read_text()) for p in srts)
    first = sandbox.store.get(NS, "whisper-base-en")
    assert first["spec"]["minReplicas"] == 1
    again = run_dag("kubeai_warm_model_from_xcom", inbox=str(inbox), outbox=str(tmp_path / "outbox"))
    assert again.state == "success" and again.xcom("transcribe_new")["skipped"] == 5
    assert (
        sandbox.store.get(NS, "whisper-base-en")["metadata"]["generation"] == first["metadata"]["generation"]
    )


def test_seed_parameters(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.2, cache_load_delay=0.3)
    sample = SAMPLES / "meeting-001.wav"
    result = run_dag("kubeai_seed_parameters", sample=str(sample))
    assert result.state == "success"
    verbose = result.xcom("check_one_file")["transcripts"][0]
    assert json.loads(verbose["content"])["words"]
    spec = added(sandbox, "whisper-medium-support")["spec"]
    assert spec["resourceProfile"] == "cpu:4" and spec["cacheProfile"] == "standard-filesystem"
    assert spec["targetRequests"] == 8 and spec["scaleDownDelaySeconds"] == 120
    assert spec["loadBalancing"] == {
        "strategy": "PrefixHash",
        "prefixHash": {"meanLoadFactor": 125, "replication": 256, "prefixCharLength": 100},
    }
    assert spec["env"] == {"WHISPER__COMPUTE_TYPE": "int8", "WHISPER__CPU_THREADS": "4"}
    assert spec["envFrom"] == [{"secretRef": {"name": "hf-token"}}]
    assert spec["files"] == [{"path": "/config/hotwords.txt", "content": "KubeAI\nAirflow\n"}]
    meta = added(sandbox, "whisper-medium-support")["metadata"]
    assert meta["labels"]["team"] == "contact-centre" and meta["labels"]["pii"] == "true"
    assert meta["annotations"]["kubeai-speech.airflow.apache.org/description"].startswith("Support-call")
    assert sandbox.store.find(NS, "whisper-medium-support") is None  # the teardown deleted it


def test_long_recordings(
    make_kubeai_sandbox: Any, run_dag: Any, recordings: dict[str, Path], tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.2, replica_concurrency=1)
    day = pendulum.datetime(2026, 11, 24, tz="UTC")
    inbox = tmp_path / "meetings" / "2026-11-24"
    inbox.mkdir(parents=True)
    shutil.copy(recordings["m4a"], inbox / "planning.m4a")
    shutil.copy(recordings["ogg"], inbox / "retro.ogg")
    result = run_dag(
        "kubeai_long_recordings",
        logical_date=day,
        meetings=str(tmp_path / "meetings"),
        subtitles=str(tmp_path / "subtitles"),
        chunk_seconds=10,
    )
    assert result.state == "success", result.tis
    assert result.xcom("transcribe_meetings")["succeeded"] == 2
    out = tmp_path / "subtitles" / "2026-11-24"
    records = read_manifest_records(out)
    assert [len(r["pieces"]) for r in records] == [4, 4]
    for name in ("planning", "retro"):
        cues = srt_cues((out / f"{name}.srt").read_text())
        assert cues[-1][1] > 37 and [c[0] for c in cues] == sorted(c[0] for c in cues)
    stats = sandbox.stats.snapshot()
    assert stats["outcomes"] == {"200": 8} and stats["max_in_flight"] <= 4
    assert sandbox.store.get(NS, "whisper-meetings")["spec"]["replicas"] == 0


def test_batch_transcription_without_a_logical_date(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    """Issue 17, point 3: Airflow 3 runs may have no logical date; the day is then the run's run_after."""
    make_kubeai_sandbox(startup_delay=0.2)
    today = pendulum.now("UTC")
    for day in (today, today.add(days=1)):  # the run may start just after midnight
        shutil.copytree(
            SAMPLES, tmp_path / "calls" / day.to_date_string(), ignore=shutil.ignore_patterns("*.txt")
        )
    result = run_dag(
        "kubeai_batch_transcription",
        logical_date=None,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert result.run.logical_date is None
    assert result.state == "success", result.tis
    day = pendulum.instance(result.run.run_after).to_date_string()
    assert len(list((tmp_path / "out" / day).glob("*.json"))) == 5


def test_teardowns_are_teardowns_and_shared_models_run_one_at_a_time() -> None:
    """Issue 17, point 2: a teardown never decides the run's state, and runs do not share capacity."""
    from tests.dag_runner import load_dag

    for dag_id, teardown in (
        ("kubeai_batch_transcription", "scale_to_zero"),
        ("kubeai_long_recordings", "scale_to_zero"),
        ("kubeai_seed_parameters", "delete_model"),
    ):
        dag = load_dag(dag_id)
        task = dag.get_task(teardown)
        assert task.is_teardown and task.upstream_task_ids, dag_id
        assert any(t.is_setup for t in dag.tasks), dag_id
        assert dag.max_active_runs == 1, dag_id


def test_long_recordings_fail_the_run_when_transcription_fails(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    """A failed transcription is a failed run, though the scale-to-zero teardown still ran."""
    sandbox = make_kubeai_sandbox(startup_delay=0.2)
    sandbox.faults.update({"status_rates": {"500": 1.0}})
    from tests.dag_runner import load_dag

    task = load_dag("kubeai_long_recordings").get_task("transcribe_meetings")
    retries = task.retries
    task.retries = 0  # dag.test() would sit out the retry delay
    try:
        inbox = tmp_path / "meetings" / "2026-11-24"
        inbox.mkdir(parents=True)
        shutil.copy(SAMPLES / "meeting-001.wav", inbox / "short.wav")
        result = run_dag(
            "kubeai_long_recordings",
            logical_date=pendulum.datetime(2026, 11, 24, tz="UTC"),
            meetings=str(tmp_path / "meetings"),
            subtitles=str(tmp_path / "subtitles"),
            chunk_seconds=10,
        )
    finally:
        task.retries = retries
    assert result.task_state("transcribe_meetings") == "failed"
    assert result.task_state("scale_to_zero") == "success"
    assert result.state == "failed"
    assert sandbox.store.get(NS, "whisper-meetings")["spec"]["replicas"] == 0
