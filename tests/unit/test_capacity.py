"""Capacity under the autoscaler: counts refused before any cluster call, holding and giving back."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from airflow_provider_kubeai_speech.capacity import (
    USER_MIN_REPLICAS_ANNOTATION,
    capacity_shortfall,
    hold_capacity,
    min_replicas_after_teardown,
)
from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator
from airflow_provider_kubeai_speech.spec import SpeechModelSpecError


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("replicas", 1.7, "replicas=1.7"),
        ("replicas", "two", "replicas='two'"),
        ("replicas", None, "replicas=None"),
        ("replicas", -1, "replicas=-1"),
        ("replicas", True, "replicas=True"),
        ("min_replicas", 0.5, "min_replicas=0.5"),
    ],
)
def test_scale_counts_are_refused_at_construction(field: str, value: Any, shown: str) -> None:
    with pytest.raises(KubeAISpeechError, match=rf"{shown}: a replica count must be a whole number.*Fix:"):
        ScaleSpeechModelOperator(task_id="t", model_name="m", **{field: value})


def test_templated_counts_are_refused_once_rendered_before_any_cluster_call() -> None:
    op = ScaleSpeechModelOperator(task_id="t", model_name="m", replicas="{{ params.n }}")
    op.replicas = "1.7"  # what rendering produced
    with (
        mock.patch.object(ScaleSpeechModelOperator, "hook") as hook,
        pytest.raises(KubeAISpeechError, match=r"replicas='1.7'.*Fix: replicas=0"),
    ):
        op.execute({})  # type: ignore[arg-type]
    hook.scale_model.assert_not_called()
    op.replicas = "2"  # a rendered whole number is fine
    with mock.patch.object(ScaleSpeechModelOperator, "hook") as hook:
        hook.scale_model.return_value = {"spec": {"replicas": 2, "minReplicas": 0}}
        op.execute({})  # type: ignore[arg-type]
    hook.scale_model.assert_called_once_with("m", 2, min_replicas=None)


def manifest(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "kubeai"}, "spec": {"minReplicas": 0, **spec}}


def test_hold_raises_min_and_records_the_users() -> None:
    held = hold_capacity(manifest(replicas=2, maxReplicas=2), 2)
    assert held["spec"]["minReplicas"] == 2
    assert held["metadata"]["annotations"][USER_MIN_REPLICAS_ANNOTATION] == "0"
    frozen = hold_capacity(manifest(replicas=2, autoscalingDisabled=True), 2)
    assert frozen["spec"]["minReplicas"] == 0  # nothing to hold against: the user's replicas stand
    assert min_replicas_after_teardown(held, 0) == 0
    assert min_replicas_after_teardown(manifest(minReplicas=1), 0) == 0  # never above the target
    assert min_replicas_after_teardown(manifest(minReplicas=1), 2) is None


def test_shortfall_says_why_and_what_to_set() -> None:
    assert capacity_shortfall(manifest(replicas=2, minReplicas=2), 2) is None
    assert capacity_shortfall(manifest(replicas=2), 2) is None  # the autoscaler may still take it
    assert "minReplicas (0)" in str(capacity_shortfall(manifest(replicas=0), 2))
    assert "maxReplicas is 1" in str(capacity_shortfall(manifest(replicas=2, maxReplicas=1), 2))
    assert "autoscaling is disabled" in str(
        capacity_shortfall(manifest(replicas=1, autoscalingDisabled=True), 2)
    )


def test_serve_refuses_waits_it_can_never_satisfy() -> None:
    with pytest.raises(SpeechModelSpecError, match=r"min_ready_replicas=3 is above scaling.max_replicas=2"):
        ServeSpeechModelOperator(
            task_id="s", model_name="m", url="hf://a/b", min_ready_replicas=3, scaling={"max_replicas": 2}
        )
    with pytest.raises(SpeechModelSpecError, match=r"autoscaling is disabled and replicas=1"):
        ServeSpeechModelOperator(
            task_id="s",
            model_name="m",
            url="hf://a/b",
            replicas=1,
            min_ready_replicas=2,
            scaling={"autoscaling_disabled": True},
        )
    with pytest.raises(SpeechModelSpecError, match=r"min_ready_replicas='x' is not a whole number"):
        ServeSpeechModelOperator(task_id="s", model_name="m", url="hf://a/b", min_ready_replicas="x")  # type: ignore[arg-type]


def _context() -> dict[str, Any]:
    ti = mock.Mock(dag_id="d", task_id="serve", try_number=1)
    return {"ti": ti, "run_id": "r"}


def _renders(hook: Any) -> Any:
    """A mocked hook that renders manifests as the real one does (in namespace 'kubeai')."""
    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

    hook.namespace = "kubeai"
    hook.render_manifest.side_effect = lambda spec, **kw: KubeAISpeechHook.render_manifest(hook, spec, **kw)
    return hook


def _serve(**kwargs: Any) -> tuple[ServeSpeechModelOperator, Any]:
    op = ServeSpeechModelOperator(
        task_id="serve", model_name="m", url="hf://a/b", wait_for_ready=False, **kwargs
    )
    patcher = mock.patch.object(ServeSpeechModelOperator, "hook")
    hook = _renders(patcher.start())
    hook.find_model.return_value = None
    hook.model_status.return_value = mock.Mock(ready_replicas=0)
    op.execute(_context())  # type: ignore[arg-type]
    patcher.stop()
    return op, hook


def test_serve_holds_min_replicas_while_autoscaling() -> None:
    _, hook = _serve(replicas=2, scaling={"min_replicas": 0, "max_replicas": 2})
    (manifest,), _ = hook.apply_model.call_args
    assert manifest["spec"]["minReplicas"] == 2 and manifest["spec"]["replicas"] == 2
    assert manifest["metadata"]["annotations"][USER_MIN_REPLICAS_ANNOTATION] == "0"


def test_serve_does_not_hold_when_told_not_to_or_without_autoscaling() -> None:
    _, hook = _serve(replicas=2, scaling={"min_replicas": 0}, hold_capacity=False)
    assert hook.apply_model.call_args.args[0]["spec"]["minReplicas"] == 0
    _, hook = _serve(replicas=2, scaling={"autoscaling_disabled": True})
    assert hook.apply_model.call_args.args[0]["spec"]["minReplicas"] == 0


def test_a_rendered_min_ready_replicas_is_a_number_for_the_wait() -> None:
    """A templated min_ready_replicas renders to text ("2"); the wait must get the number."""
    op = ServeSpeechModelOperator(
        task_id="serve", model_name="m", url="hf://a/b", replicas=2, min_ready_replicas="{{ params.n }}"
    )
    op.min_ready_replicas = "2"  # as rendered
    with mock.patch.object(ServeSpeechModelOperator, "hook") as hook:
        _renders(hook)
        hook.find_model.return_value = None
        hook.wait_for_ready.return_value = mock.Mock(ready_replicas=2)
        op.execute(_context())  # type: ignore[arg-type]
    assert hook.wait_for_ready.call_args.args[1] == 2


def test_holding_capacity_without_a_teardown_is_warned() -> None:
    """A held minReplicas with nothing to give it back would keep the replicas running for good."""
    import pendulum
    from airflow.sdk import DAG

    with DAG("held", start_date=pendulum.datetime(2026, 12, 1), schedule=None):
        alone = ServeSpeechModelOperator(
            task_id="alone", model_name="m", url="hf://a/b", wait_for_ready=False
        )
    with DAG("released", start_date=pendulum.datetime(2026, 12, 1), schedule=None):
        served = ServeSpeechModelOperator(
            task_id="serve", model_name="m", url="hf://a/b", wait_for_ready=False
        )
        served >> ScaleSpeechModelOperator(task_id="down", model_name="m").as_teardown(setups=served)
    assert not alone._has_teardown() and served._has_teardown()
    manifest = {"spec": {"minReplicas": 2}}
    with mock.patch.object(ServeSpeechModelOperator, "log", new_callable=mock.PropertyMock) as log:
        alone._log_hold(manifest, 0)
        assert "No teardown follows" in log.return_value.warning.call_args.args[0]
        log.reset_mock()
        served._log_hold(manifest, 0)
        log.return_value.warning.assert_not_called()
