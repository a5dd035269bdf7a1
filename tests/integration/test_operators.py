"""Serve, sensor, trigger and teardown, end to end with dag.test() against the sandbox."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_kubeai_speech.spec import SpeechModelSpecError
from local_kubeai import Sandbox
from local_kubeai.testing import wait_until
from tests.integration.conftest import model_manifest

NS = "kubeai"


def model(sandbox: Sandbox, name: str = "whisper") -> dict[str, Any]:
    return sandbox.store.get(NS, name)


def test_serve_creates_labels_and_returns_the_endpoint(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.5)
    result = run_dag("test_serve_update")
    assert result.state == "success"
    xcom = result.xcom("serve")
    assert xcom == {
        "name": "whisper",
        "namespace": NS,
        "model": "whisper",
        "base_url": f"{sandbox.kubeai_url}/openai/v1",
        "ready_replicas": 1,
    }
    meta = model(sandbox)["metadata"]
    assert (
        meta["labels"]["airflow-dag-id"] == "test_serve_update"
        and meta["labels"]["airflow-task-id"] == "serve"
    )
    assert meta["annotations"]["kubeai-speech.airflow.apache.org/run-id"] == result.run.run_id
    assert model(sandbox)["spec"]["replicas"] == 1


def test_rerun_is_idempotent_then_updates(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.2)
    assert run_dag("test_serve_update").state == "success"
    generation = model(sandbox)["metadata"]["generation"]
    assert run_dag("test_serve_update").state == "success"
    assert len(sandbox.store.keys()) == 1 and model(sandbox)["metadata"]["generation"] == generation
    assert run_dag("test_serve_update", args=["--beam-size", "1"]).state == "success"
    assert model(sandbox)["spec"]["args"] == ["--beam-size", "1"]
    assert model(sandbox)["metadata"]["generation"] == generation + 1
    assert "409" not in sandbox.stats.snapshot()["outcomes"]


def test_if_exists_skip_and_fail(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.2)
    sandbox.store.create(NS, model_manifest("whisper", replicas=1, args=["--theirs"]), "someone-else")
    before = model(sandbox)["metadata"]["resourceVersion"]
    assert run_dag("test_serve_skip", args=["--ours"]).state == "success"
    assert (
        model(sandbox)["spec"]["args"] == ["--theirs"]
        and model(sandbox)["metadata"]["resourceVersion"] >= before
    )
    failed = run_dag("test_serve_fail")
    assert failed.state == "failed" and failed.task_state("serve") == "failed"
    assert model(sandbox)["spec"]["args"] == ["--theirs"]


def test_serve_deferrable_with_warm_up(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=1.0)
    result = run_dag("test_serve_deferrable")
    assert result.state == "success" and result.xcom("serve")["ready_replicas"] == 1
    assert sandbox.stats.snapshot()["outcomes"] == {"200": 1}  # the warm-up clip
    assert sandbox.stats.snapshot()["kube_requests"]["watch"] >= 1


@pytest.mark.parametrize("dag_id", ["test_serve_update", "test_serve_deferrable"])
def test_readiness_timeout_in_both_modes(make_kubeai_sandbox: Any, run_dag: Any, dag_id: str) -> None:
    # The messages are asserted in the hook and trigger tests; here: the task fails at the
    # deadline, not before it (an early crash would fail too) and not much after it.
    sandbox = make_kubeai_sandbox(startup_delay=120)
    started = time.monotonic()
    result = run_dag(dag_id, timeout=2)
    elapsed = time.monotonic() - started
    assert result.state == "failed" and result.task_state("serve") == "failed"
    assert 2 <= elapsed < 60
    assert model(sandbox)["status"]["replicas"] == {"all": 1, "ready": 0}


def test_serve_without_waiting(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    make_kubeai_sandbox(startup_delay=60)
    result = run_dag("test_serve_no_wait")
    assert result.state == "success" and result.xcom("serve")["ready_replicas"] == 0


@pytest.mark.parametrize("dag_id", ["test_sensor_poke", "test_sensor_deferrable"])
def test_sensor(make_kubeai_sandbox: Any, run_dag: Any, dag_id: str) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=1.0)
    threading.Timer(0.5, lambda: sandbox.store.create(NS, model_manifest("whisper", replicas=1), "t")).start()
    result = run_dag(dag_id)
    assert result.state == "success"
    assert result.xcom("wait")["ready_replicas"] == 1


@pytest.mark.parametrize("dag_id", ["test_sensor_poke", "test_sensor_deferrable"])
def test_sensor_times_out(make_kubeai_sandbox: Any, run_dag: Any, dag_id: str) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=600)
    sandbox.store.create(NS, model_manifest("whisper", replicas=1), "t")
    started = time.monotonic()
    assert run_dag(dag_id).state == "failed"
    assert time.monotonic() - started < 60


def test_sensor_waits_for_the_cache(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, cache_load_delay=1.5)
    sandbox.store.create(NS, model_manifest("whisper", replicas=1, cache_profile="std"), "t")
    result = run_dag("test_sensor_deferrable")
    assert result.state == "success" and result.xcom("wait")["cache_loaded"] is True


def test_teardown_scale_then_delete(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    sandbox.store.create(NS, model_manifest("whisper", replicas=2, scaling={"min_replicas": 1}), "t")
    result = run_dag("test_teardown")
    assert result.state == "success"
    assert result.xcom("scale_to_zero") == {
        "name": "whisper",
        "namespace": NS,
        "replicas": 0,
        "min_replicas": 0,
    }
    assert result.xcom("delete") is True
    assert sandbox.store.keys() == []
    again = run_dag("test_teardown")  # nothing left: both steps tolerate the absence
    assert again.state == "success" and again.xcom("delete") is False


def test_unsupported_seed_parameters_are_refused_at_construction() -> None:
    from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator

    with pytest.raises(
        SpeechModelSpecError, match=r"node_selector=\{'gpu': 'l4'\} is not supported.*resource profile"
    ):
        ServeSpeechModelOperator(task_id="s", model_name="w", url="hf://a/b", node_selector={"gpu": "l4"})
    with pytest.raises(SpeechModelSpecError, match="unsupported scheme"):
        ServeSpeechModelOperator(task_id="s", model_name="w", url="s://bucket/model")
    templated = ServeSpeechModelOperator(task_id="s", model_name="{{ params.m }}", url="s://later")
    assert templated.url == "s://later"  # checked at run time, once rendered


def _context(dag_id: str = "d", task_id: str = "serve", run_id: str = "r1") -> dict[str, Any]:
    return {"ti": SimpleNamespace(dag_id=dag_id, task_id=task_id, try_number=1), "run_id": run_id}


def test_on_kill_deletes_the_model_this_task_created(make_kubeai_sandbox: Any) -> None:
    from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator

    sandbox = make_kubeai_sandbox(startup_delay=60)
    op = ServeSpeechModelOperator(
        task_id="serve", model_name="killed", url="hf://a/b", replicas=1, timeout=60
    )
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _run(op, errors))
    worker.start()
    wait_until(lambda: sandbox.store.find(NS, "killed"))
    op.on_kill()
    worker.join(timeout=20)
    assert not worker.is_alive() and errors  # the wait stopped
    assert sandbox.store.find(NS, "killed") is None

    sandbox.store.create(NS, model_manifest("theirs", replicas=1), "someone-else")
    op = ServeSpeechModelOperator(
        task_id="serve", model_name="theirs", url="hf://openai/whisper-tiny", replicas=1, timeout=60
    )
    worker = threading.Thread(target=lambda: _run(op, errors))
    worker.start()
    time.sleep(0.5)
    op.on_kill()
    worker.join(timeout=20)
    assert sandbox.store.find(NS, "theirs") is not None  # not ours: left alone


def _run(op: Any, errors: list[BaseException]) -> None:
    try:
        op.execute(_context())
    except BaseException as err:
        errors.append(err)


# -- the trigger on its own -------------------------------------------------------------------


def _events(trigger: Any) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_trigger_serialization_round_trips() -> None:
    from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger

    trigger = SpeechModelReadyTrigger(
        "w", namespace="kubeai", min_ready_replicas=2, timeout=30, delete_on_kill=True
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_kubeai_speech.triggers.model_ready.SpeechModelReadyTrigger"
    clone = SpeechModelReadyTrigger(**kwargs)
    assert clone.serialize() == (path, kwargs)
    import json

    assert json.loads(json.dumps(kwargs)) == kwargs


def test_trigger_survives_drops_and_410_and_reports_each_outcome(make_kubeai_sandbox: Any) -> None:
    from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger

    sandbox = make_kubeai_sandbox(startup_delay=1.5, seed=1)
    sandbox.faults.update({"watch_max_seconds": 0.3, "watch_gone_rate": 0.5})
    sandbox.store.create(NS, model_manifest("trig", replicas=1), "t")
    (event,) = _events(SpeechModelReadyTrigger("trig", timeout=30))
    assert event == {
        "status": "success",
        "message": event["message"],
        "name": "trig",
        "namespace": NS,
        "ready_replicas": 1,
        "model_status": event["model_status"],
    }
    assert event["model_status"]["ready_replicas"] == 1 and event["model_status"]["name"] == "trig"
    assert sandbox.stats.snapshot()["watches"] >= 3

    sandbox.store.create(NS, model_manifest("slow", replicas=1), "t")
    sandbox.config.startup_delay = 600
    sandbox.store.mutate(NS, "slow", lambda o: {**o, "spec": {**o["spec"], "replicas": 2}}, "t")
    (event,) = _events(SpeechModelReadyTrigger("slow", min_ready_replicas=2, timeout=1))
    assert event["status"] == "timeout" and "not ready within" in event["message"]

    threading.Timer(0.5, lambda: sandbox.store.delete(NS, "slow")).start()
    (event,) = _events(SpeechModelReadyTrigger("slow", min_ready_replicas=2, timeout=30))
    assert event["status"] == "error" and "does not exist (or was deleted" in event["message"]

    (event,) = _events(SpeechModelReadyTrigger("nope", timeout=5, namespace="forbidden"))
    assert event["status"] == "error" and "403" in event["message"]


def test_trigger_on_kill_deletes_only_when_asked(make_kubeai_sandbox: Any) -> None:
    from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger

    sandbox = make_kubeai_sandbox()
    sandbox.store.create(NS, model_manifest("kept"), "t")
    sandbox.store.create(NS, model_manifest("dropped"), "t")
    asyncio.run(SpeechModelReadyTrigger("kept", timeout=5).on_kill())
    asyncio.run(SpeechModelReadyTrigger("dropped", timeout=5, delete_on_kill=True).on_kill())
    assert sandbox.store.find(NS, "kept") is not None and sandbox.store.find(NS, "dropped") is None


@pytest.mark.slow
@pytest.mark.parametrize("dag_id", ["test_serve_update", "test_serve_deferrable"])
def test_a_killed_worker_and_a_retry_reattach_to_the_same_model(
    make_kubeai_sandbox: Any, run_dag: Any, dag_id: str
) -> None:
    import signal

    from tests.dag_runner import start_dag_in_child

    sandbox = make_kubeai_sandbox(startup_delay=600)
    run_dag("test_serve_no_wait")  # makes sure the database exists before the child uses it
    sandbox.store.delete(NS, "whisper")
    child = start_dag_in_child(dag_id)
    try:
        wait_until(lambda: sandbox.store.find(NS, "whisper"), timeout=60)
        time.sleep(1.0)  # the worker (or the inline trigger) is now waiting for readiness
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
    uid = model(sandbox)["metadata"]["uid"]
    sandbox.config.startup_delay = 0.2
    sandbox.store.mutate(
        NS, "whisper", lambda o: {**o, "spec": {**o["spec"], "args": ["--restart-pods"]}}, "t"
    )
    result = run_dag(dag_id)  # the retry
    assert result.state == "success"
    assert sandbox.store.keys() == [(NS, "whisper")] and model(sandbox)["metadata"]["uid"] == uid
