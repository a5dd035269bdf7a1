"""Faults survived, nothing lost, nothing leaked: fault storms, cold starts, cluster faults, a soak, a token scan."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pendulum
import pytest

from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_records
from local_kubeai.engines import fake_transcript_text
from local_kubeai.testing import wait_until
from tests.audio_files import make_wavs
from tests.integration.conftest import model_manifest

NS = "kubeai"
SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"


@pytest.mark.slow
def test_500_files_through_503s_drops_and_500s_exactly_once(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, seed=2026)
    sandbox.store.create(NS, model_manifest("whisper", replicas=2, scaling={"min_replicas": 2}), "t")
    wait_until(
        lambda: sandbox.store.get(NS, "whisper").get("status", {}).get("replicas", {}).get("ready") == 2
    )
    sandbox.faults.update({"status_rates": {"503": 0.2, "500": 0.02}, "drop_rate": 0.05})
    files = make_wavs(tmp_path / "in", 500, seconds=0.2)
    out = tmp_path / "out"
    result = run_dag("test_invoke", audio=str(tmp_path / "in"), output=str(out), concurrency=8, attempts=12)
    assert result.state == "success"
    records = read_manifest_records(out)
    assert (
        len(records) == 500
        and len({r["input"] for r in records}) == 500
        and {r["status"] for r in records} == {"ok"}
    )
    assert len(list(out.glob("*.json"))) == 500
    for wav in files:
        assert json.loads((out / f"{wav.stem}.json").read_text())["text"] == fake_transcript_text(
            wav.read_bytes()
        )
    outcomes = sandbox.stats.snapshot()["outcomes"]
    injected = outcomes.get("503", 0) + outcomes.get("500", 0) + outcomes.get("dropped", 0)
    assert outcomes["200"] == 500 and injected > 100
    assert sum(r["attempts"] for r in records) == 500 + injected  # every attempt is accounted for


@pytest.mark.slow
def test_cold_start_from_zero_replicas_holds_requests(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=20, autoscale_window=300)
    sandbox.store.create(NS, model_manifest("whisper", scaling={"min_replicas": 0, "max_replicas": 2}), "t")
    make_wavs(tmp_path / "in", 20)
    result = run_dag(
        "test_invoke", audio=str(tmp_path / "in"), output=str(tmp_path / "out"), concurrency=4, attempts=1
    )
    assert result.state == "success"
    summary = result.xcom("transcribe")
    assert (summary["succeeded"], summary["failed"]) == (20, 0)
    assert summary["seconds"] >= 20  # the requests were held while the replica started
    assert sandbox.store.get(NS, "whisper")["spec"]["replicas"] >= 1


@pytest.mark.slow
def test_serve_sensor_trigger_and_teardown_converge_under_cluster_faults(
    make_kubeai_sandbox: Any, run_dag: Any
) -> None:
    # Pods take 4 s to start and each watch is cut after 0.5 s: a deferred wait, however late the
    # triggerer picks it up on a loaded machine, outlives several watches (1.5 s sometimes did not).
    sandbox = make_kubeai_sandbox(startup_delay=4, seed=9)
    sandbox.faults.update(
        {
            "kube_status_rates": {"500": 0.15, "429": 0.1},
            "kube_conflict_rate": 0.1,
            "retry_after": 0,
            "watch_max_seconds": 0.5,
            "watch_gone_rate": 0.3,
        }
    )
    assert run_dag("test_serve_deferrable").state == "success"
    assert run_dag("test_serve_update").state == "success"
    assert run_dag("test_sensor_deferrable").state == "success"
    assert run_dag("test_sensor_poke").state == "success"
    assert run_dag("test_teardown").state == "success"
    assert sandbox.store.keys() == []
    requests = sandbox.stats.snapshot()["kube_requests"]
    assert requests["watch"] >= 3


def _resources() -> tuple[int, int]:
    import gc

    gc.collect()  # count what is still referenced, not garbage awaiting collection
    return len(os.listdir("/proc/self/fd")), threading.active_count()


@pytest.mark.slow
def test_soak_the_batch_example_five_times_with_faults(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.2, seed=5)
    sandbox.faults.update(
        {
            "status_rates": {"503": 0.1},
            "drop_rate": 0.03,
            "kube_status_rates": {"500": 0.05},
            "watch_max_seconds": 1,
        }
    )
    seen: list[tuple[int, int]] = []
    for day in range(1, 6):
        date = pendulum.datetime(2026, 11, day, tz="UTC")
        inbox = tmp_path / "calls" / date.to_date_string()
        shutil.copytree(SAMPLES, inbox, ignore=shutil.ignore_patterns("*.txt"))
        result = run_dag(
            "kubeai_batch_transcription",
            logical_date=date,
            input_root=str(tmp_path / "calls"),
            output_root=str(tmp_path / "out"),
        )
        assert result.state == "success", (day, result.tis)
        assert result.xcom("transcribe_day")["succeeded"] == 5
        model = sandbox.store.get(NS, "whisper-small-en")
        assert model["spec"]["replicas"] == 0  # torn down: scaled to zero
        wait_until(lambda: not sandbox.controller.pod_objects(NS))
        seen.append(_resources())
    fds, threads = zip(*seen[1:], strict=True)
    assert max(fds) - min(fds) <= 8, seen  # no leak of sockets or files between runs
    assert max(threads) - min(threads) <= 4, seen


def test_the_token_never_reaches_xcom_rendered_fields_logs_or_errors(
    make_kubeai_sandbox: Any,
    run_dag: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "gw-tok-4b1d2f9e-never-in-logs"
    sandbox = make_kubeai_sandbox(startup_delay=0.2, gateway_token=token)
    inbox = tmp_path / "calls" / "2026-11-24"
    shutil.copytree(SAMPLES, inbox, ignore=shutil.ignore_patterns("*.txt"))
    sandbox.faults.update({"status_rates": {"503": 0.3}})
    result = run_dag(
        "kubeai_batch_transcription",
        logical_date=pendulum.datetime(2026, 11, 24, tz="UTC"),
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert result.state == "success"
    sandbox.config.gateway_token = "rotated"  # now every request fails with 401, and errors are logged
    failed = run_dag("test_invoke", audio=str(inbox), output=str(tmp_path / "out2"))
    assert failed.state == "failed"
    home = Path(os.environ["AIRFLOW_HOME"])
    for path in [
        *home.rglob("*.db*"),
        *home.rglob("*.log"),
        *(tmp_path / "out").rglob("*"),
        *(tmp_path / "out2").rglob("*"),
    ]:
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    captured = capfd.readouterr()
    assert token not in captured.out + captured.err + caplog.text
