"""Serving under KubeAI's autoscaler (the sandbox's models KubeAI's internal/modelautoscaler)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_kubeai_speech.capacity import USER_MIN_REPLICAS_ANNOTATION
from airflow_provider_kubeai_speech.exceptions import CapacityNotProvidedError
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger
from local_kubeai.testing import wait_until
from tests.integration.conftest import model_manifest

NS = "kubeai"
FAST = {"autoscale_interval": 0.1, "autoscale_window": 1.0}


def nightly_model(scale_down_delay_seconds: int = 1) -> dict[str, Any]:
    return model_manifest(
        "nightly",
        replicas=2,
        scaling={
            "min_replicas": 0,
            "max_replicas": 2,
            "target_request": 4,
            "scale_down_delay_seconds": scale_down_delay_seconds,
        },
    )


def idle_at_zero(sandbox: Any) -> None:
    """The state of a Model whose last traffic was long ago: the autoscaler took it to zero."""
    sandbox.store.create(NS, nightly_model(), "yesterday")
    wait_until(
        lambda: (
            (sandbox.store.get(NS, "nightly").get("status") or {"replicas": {"ready": 0}})["replicas"][
                "ready"
            ]
            >= 1
        ),
        timeout=20,
    )
    wait_until(lambda: sandbox.store.get(NS, "nightly")["spec"]["replicas"] == 0, timeout=20)
    wait_until(lambda: sandbox.store.get(NS, "nightly")["status"]["replicas"] == {"all": 0, "ready": 0})


def test_the_autoscaler_takes_applied_replicas_back(make_kubeai_sandbox: Any) -> None:
    """KubeAI's behaviour the provider must live with: spec.replicas is the autoscaler's."""
    sandbox = make_kubeai_sandbox(startup_delay=0.3, startup_stagger=0.5, **FAST)
    idle_at_zero(sandbox)
    sandbox.store.mutate(NS, "nightly", lambda o: {**o, "spec": {**o["spec"], "replicas": 2}}, "someone")
    wait_until(lambda: sandbox.store.get(NS, "nightly")["spec"]["replicas"] == 0, timeout=10)
    owners = [m["manager"] for m in sandbox.store.get(NS, "nightly")["metadata"]["managedFields"]]
    assert "kubeai-autoscaler" in owners


def test_scale_down_waits_for_consecutive_decisions(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.1, **FAST)
    sandbox.store.create(NS, nightly_model(scale_down_delay_seconds=2), "t")
    wait_until(
        lambda: (
            (sandbox.store.get(NS, "nightly").get("status") or {"replicas": {"ready": 0}})["replicas"][
                "ready"
            ]
            == 2
        ),
        timeout=10,
    )
    ready_at = time.monotonic()
    wait_until(lambda: sandbox.store.get(NS, "nightly")["spec"]["replicas"] == 0, timeout=20)
    assert time.monotonic() - ready_at >= 1.8  # ceil(2 s / 0.1 s) = 20 decisions first


def test_nightly_run_after_idle_holds_its_capacity(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    """Issue 17, point 1: served with replicas=2 at min 0 after a quiet day, the run waited forever."""
    sandbox = make_kubeai_sandbox(startup_delay=0.3, startup_stagger=0.5, **FAST)
    idle_at_zero(sandbox)
    result = run_dag("test_nightly_after_idle")
    assert result.state == "success", result.tis
    assert result.task_state("wait_until_ready") == "success"  # before: timed out at 0/2 ready
    assert result.xcom("wait_until_ready")["ready_replicas"] == 2
    model = sandbox.store.get(NS, "nightly")
    # the teardown gave the capacity back: the user's minimum, recorded by the serve task
    assert model["spec"]["minReplicas"] == 0 and model["spec"]["replicas"] == 0
    assert model["metadata"]["annotations"][USER_MIN_REPLICAS_ANNOTATION] == "0"


def test_a_wait_nothing_will_satisfy_fails_at_once(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3, startup_stagger=0.5, **FAST)
    idle_at_zero(sandbox)
    hook = KubeAISpeechHook()
    started = time.monotonic()
    with pytest.raises(CapacityNotProvidedError, match=r"minReplicas \(0\).*Fix: .*min_replicas>=2"):
        hook.wait_for_ready("nightly", 2, timeout=60)
    assert time.monotonic() - started < 30  # not the 60 s timeout (the first call imports the client)

    async def events() -> list[dict[str, Any]]:
        trigger = SpeechModelReadyTrigger("nightly", min_ready_replicas=2, timeout=60)
        return [e.payload async for e in trigger.run()]

    started = time.monotonic()
    (event,) = asyncio.run(events())  # the deferrable wait fails as fast, with the same reason
    assert event["status"] == "error" and "Fix: " in event["message"], event
    assert time.monotonic() - started < 30
    sandbox.store.create(
        NS, model_manifest("frozen", replicas=1, scaling={"autoscaling_disabled": True}), "t"
    )
    with pytest.raises(CapacityNotProvidedError, match=r"autoscaling is disabled and spec.replicas is 1"):
        hook.wait_for_ready("frozen", 2, timeout=60)


def test_at_min_zero_the_warm_up_request_wakes_the_model(make_kubeai_sandbox: Any, run_dag: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.5, **FAST)
    result = run_dag("test_wake_by_request")
    assert result.state == "success", result.tis
    assert result.xcom("serve_model")["ready_replicas"] == 1
    model = sandbox.store.get(NS, "woken")
    assert model["spec"]["minReplicas"] == 0  # nothing held
    assert model["spec"]["replicas"] == 1  # set by the scale from zero the request caused
    assert sandbox.stats.snapshot()["outcomes"] == {"200": 1}  # one request: the warm-up
