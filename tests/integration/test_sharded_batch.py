"""The sharded example DAG end to end with dag.test() against the sandbox: one day's recordings over
4 mapped shards in a pool, one output folder, a gather task that judges the failure budget over all
shards (issue 19)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_state
from airflow_provider_kubeai_speech.transcription.shards import shard_of
from local_kubeai.engines import fake_transcript_text
from tests.audio_files import make_wavs
from tests.dag_runner import ensure_sound_metadata_db

SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
DAY = pendulum.datetime(2026, 11, 24, tz="UTC")


@pytest.fixture
def pool(airflow_db: None) -> str:
    """The pool the shards use, created in the metadata database as a deployment would."""
    from airflow.models.pool import Pool

    ensure_sound_metadata_db()
    Pool.create_or_update_pool(
        "kubeai_whisper", slots=2, description="2 replicas x 4", include_deferred=False
    )
    return "kubeai_whisper"


def inbox(tmp_path: Path, bad: int = 0) -> Path:
    folder = tmp_path / "calls" / "2026-11-24"
    shutil.copytree(SAMPLES, folder, ignore=shutil.ignore_patterns("*.txt", "*.md"))
    make_wavs(folder, 15, seconds=0.2, prefix="queue")
    for i in range(bad):
        (folder / f"broken-{i}.wav").write_bytes(b"this is not audio " * 20)
    return folder


def test_sharded_batch(make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path, pool: str) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3)
    folder = inbox(tmp_path)
    wavs = sorted(folder.glob("*.wav"))
    result = run_dag(
        "kubeai_sharded_batch",
        logical_date=DAY,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert result.state == "success", result.tis
    summary = result.xcom("gather")
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["shards"]) == (20, 20, 0, 4)
    out = tmp_path / "out" / "2026-11-24"
    for wav in wavs:
        assert json.loads((out / f"{wav.stem}.json").read_text()) == {
            "text": fake_transcript_text(wav.read_bytes())
        }
    # each shard wrote its own part, and took exactly the files its hash picks
    state = read_manifest_state(out)
    assert state.parts == 4 and len(state.last) == 20
    parts = sorted((out / "_transcriptions").glob("part-*.jsonl"))
    by_part = [{json.loads(line)["input"] for line in p.read_text().splitlines()} for p in parts]
    expected = sorted(
        (sorted(str(w) for w in wavs if shard_of(str(w), 4) == k) for k in range(4)), key=lambda s: s[:1]
    )
    assert sorted((sorted(s) for s in by_part), key=lambda s: s[:1]) == expected
    assert all(
        str(ti.pool) == pool for ti in result.run.get_task_instances() if ti.task_id == "transcribe_shard"
    )
    model = sandbox.store.get("kubeai", "whisper-small-sharded")
    assert model["spec"]["minReplicas"] == 0  # the teardown gave the capacity back

    again = run_dag(
        "kubeai_sharded_batch",
        logical_date=DAY,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert again.state == "success"
    assert (again.xcom("gather")["skipped"], again.xcom("gather")["succeeded"]) == (20, 0)


def test_sharded_batch_fails_when_the_budget_over_all_shards_is_exceeded(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path, pool: str
) -> None:
    make_kubeai_sandbox(startup_delay=0.3)
    inbox(tmp_path, bad=3)  # 3 of 23 = 13 % > 10 %: no shard fails on its own, the gather does
    result = run_dag(
        "kubeai_sharded_batch",
        logical_date=DAY,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
        max_failed=0.1,
    )
    assert result.state == "failed"
    assert result.task_state("gather") == "failed"
    assert {str(ti.state) for ti in result.run.get_task_instances() if ti.task_id == "transcribe_shard"} == {
        "success"
    }
    assert result.task_state("scale_to_zero") == "success"
    state = read_manifest_state(tmp_path / "out" / "2026-11-24")
    assert sorted(Path(u).name for u, r in state.last.items() if r["status"] == "failed") == [
        "broken-0.wav", "broken-1.wav", "broken-2.wav",
    ]  # fmt: skip
    within = run_dag(
        "kubeai_sharded_batch",
        logical_date=DAY,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
        max_failed=3,
    )
    assert within.state == "success" and within.xcom("gather")["failed"] == 3
