"""The operators' branches against a mocked KubeAISpeechHook (no cluster, no sandbox): what each
branch asks the hook to do, and that every path closes the hook."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_kubeai_speech.exceptions import (
    InvalidArgumentError,
    KubeAIClusterError,
    KubeAISpeechError,
    ModelNotFoundError,
)
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.model_status import ModelStatus
from airflow_provider_kubeai_speech.operators.identity import airflow_labels_and_annotations, created_by
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import (
    DeleteSpeechModelOperator,
    ScaleSpeechModelOperator,
)
from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor
from airflow_provider_kubeai_speech.spec import SpeechModelSpecError, build_speech_model_spec, whole_number

URL = "hf://Systran/faster-whisper-tiny"


def context(map_index: int = -1, run_id: str = "run-1") -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="dag", task_id="serve", map_index=map_index, try_number=1)
    return {"ti": ti, "run_id": run_id}


def status(ready: int) -> ModelStatus:
    return ModelStatus.from_model(
        {"spec": {"replicas": 1}, "status": {"replicas": {"ready": ready, "all": 1}}}
    )


def mocked_hook(operator: Any, *, existing: dict[str, Any] | None = None, ready: int = 1) -> mock.MagicMock:
    hook = mock.MagicMock()
    hook.__exit__.return_value = False  # a context manager that lets errors through, as the real one
    hook.namespace = "kubeai"
    hook.find_model.return_value = existing
    hook.model_status.return_value = status(ready)
    hook.apply_model.return_value = {"metadata": {"resourceVersion": "2"}}
    hook.render_manifest.side_effect = lambda spec, **kw: KubeAISpeechHook.render_manifest(hook, spec, **kw)
    operator.__dict__["hook"] = hook  # the operators' cached `hook` property
    return hook


def serve(**kwargs: Any) -> ServeSpeechModelOperator:
    return ServeSpeechModelOperator(
        task_id="serve", model_name="whisper", url=URL, hold_capacity=False, **kwargs
    )


def existing_model(ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    annotations = airflow_labels_and_annotations(ctx)[1] if ctx else {}
    spec = build_speech_model_spec({"model_name": "whisper", "url": URL}).kubeai_spec()
    return {"metadata": {"name": "whisper", "resourceVersion": "1", "annotations": annotations}, "spec": spec}


def test_serve_creates_an_absent_model_and_closes_the_hook() -> None:
    op = serve(wait_for_ready=False)
    hook = mocked_hook(op)
    result = op.execute(context())
    hook.apply_model.assert_called_once()
    assert hook.apply_model.call_args.args[0]["metadata"]["name"] == "whisper"
    hook.wait_for_ready.assert_not_called()
    hook.__exit__.assert_called_once()
    assert result["ready_replicas"] == 1


def test_serve_if_exists_fail_refuses_a_model_it_did_not_create() -> None:
    op = serve(if_exists="fail", wait_for_ready=False)
    hook = mocked_hook(op, existing=existing_model())
    with pytest.raises(KubeAISpeechError, match="already exists and if_exists='fail'"):
        op.execute(context())
    hook.apply_model.assert_not_called()
    hook.__exit__.assert_called_once()  # closed on failure too


def test_serve_if_exists_fail_updates_the_model_an_earlier_try_created() -> None:
    ctx = context()
    op = serve(if_exists="fail", wait_for_ready=False)
    hook = mocked_hook(op, existing=existing_model(ctx))
    op.execute(ctx)
    hook.apply_model.assert_called_once()


def test_serve_if_exists_skip_leaves_the_model_alone() -> None:
    op = serve(if_exists="skip", wait_for_ready=False)
    hook = mocked_hook(op, existing=existing_model())
    op.execute(context())
    hook.apply_model.assert_not_called()


def test_serve_if_exists_update_applies() -> None:
    op = serve(wait_for_ready=False)
    hook = mocked_hook(op, existing=existing_model())
    op.execute(context())
    hook.apply_model.assert_called_once()


def test_serve_defers_until_ready_and_does_not_wait_in_the_worker() -> None:
    op = serve(deferrable=True)
    hook = mocked_hook(op, ready=0)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    assert deferred.value.trigger.serialize()[1]["model_name"] == "whisper"
    hook.wait_for_ready.assert_not_called()
    hook.__exit__.assert_called_once()


def test_serve_does_not_defer_when_already_ready() -> None:
    op = serve(deferrable=True)
    hook = mocked_hook(op, ready=1)
    hook.wait_for_ready.return_value = status(1)  # returns at once: the Model is ready
    assert op.execute(context())["ready_replicas"] == 1


def test_serve_pokes_in_the_worker_when_not_deferrable() -> None:
    op = serve(deferrable=False)
    hook = mocked_hook(op, ready=0)
    hook.wait_for_ready.return_value = status(1)
    op.execute(context())
    hook.wait_for_ready.assert_called_once()
    assert hook.wait_for_ready.call_args.args[:2] == ("whisper", 1)


def test_delete_tolerates_an_absent_model() -> None:
    op = DeleteSpeechModelOperator(task_id="delete", model_name="whisper")
    hook = mocked_hook(op)
    hook.delete_model.return_value = False
    op.execute(context())
    hook.delete_model.assert_called_once()
    assert hook.delete_model.call_args.kwargs["ignore_not_found"] is True
    hook.__exit__.assert_called_once()


def test_scale_tolerates_an_absent_model_and_lets_the_hook_restore_the_minimum() -> None:
    op = ScaleSpeechModelOperator(task_id="scale", model_name="whisper")
    hook = mocked_hook(op)
    hook.scale_model.side_effect = ModelNotFoundError("gone")
    assert op.execute(context()) is None
    hook.scale_model.assert_called_once_with("whisper", 0, min_replicas=None)  # the hook restores it
    hook.__exit__.assert_called_once()


def test_scale_raises_other_cluster_errors() -> None:
    op = ScaleSpeechModelOperator(task_id="scale", model_name="whisper")
    hook = mocked_hook(op)
    hook.scale_model.side_effect = KubeAIClusterError("forbidden", status=403)
    with pytest.raises(KubeAIClusterError):
        op.execute(context())


def test_sensor_defers_when_not_ready_and_returns_at_once_when_ready() -> None:
    sensor = SpeechModelReadySensor(task_id="ready", model_name="whisper", deferrable=True, timeout=60)
    hook = mocked_hook(
        sensor,
        existing={
            "metadata": {"name": "whisper"},
            "spec": {"replicas": 1, "minReplicas": 1, "maxReplicas": 1},
            "status": {"replicas": {"all": 1, "ready": 0}},
        },
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() == 120
    hook.__exit__.assert_called_once()


def test_sensor_resumes_and_fails_on_a_timeout_event() -> None:
    sensor = SpeechModelReadySensor(task_id="ready", model_name="whisper", deferrable=True)
    with pytest.raises(KubeAISpeechError):
        sensor.execute_complete(context(), {"status": "timeout", "message": "not ready within 60 s"})


def test_mapped_tasks_label_their_models_apart() -> None:
    labels, annotations = airflow_labels_and_annotations(context(map_index=2))
    assert labels["airflow-map-index"] == "2"
    model = {"metadata": {"annotations": annotations}}
    assert created_by(model, context(map_index=2))
    assert not created_by(model, context(map_index=3))
    assert not created_by(model, context())
    assert "airflow-map-index" not in airflow_labels_and_annotations(context())[0]


def test_hook_close_is_idempotent_and_creates_nothing() -> None:
    hook = KubeAISpeechHook("nowhere")
    with mock.patch.object(KubeAISpeechHook, "get_connection") as get_connection, hook as entered:
        assert entered is hook
    get_connection.assert_not_called()  # closing an unused hook read no connection

    endpoint, api_client = mock.MagicMock(), mock.MagicMock()
    hook.__dict__["endpoint"] = endpoint
    hook.__dict__["kubernetes_hook"] = SimpleNamespace(api_client=api_client)
    hook.close()
    hook.close()
    endpoint.close.assert_called_once()
    endpoint.stopping.set.assert_called_once()
    api_client.close.assert_called_once()
    assert "endpoint" not in hook.__dict__ and "kubernetes_hook" not in hook.__dict__


def test_spec_errors_are_provider_errors_and_value_errors() -> None:
    with pytest.raises(SpeechModelSpecError) as err:
        build_speech_model_spec({"model_name": "Not A Name", "url": URL})
    assert isinstance(err.value, KubeAISpeechError) and isinstance(err.value, ValueError)
    assert err.value.__cause__ is not None  # pydantic's error is kept as the cause


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [(0, 0, 0), ("2", 1, 2), (" 3 ", 0, 3), (None, 0, None), ("None", 0, None)],
)
def test_one_whole_number_parser(value: Any, minimum: int, expected: int | None) -> None:
    assert whole_number(value, minimum=minimum, optional=True) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "not a whole number"),
        (1.5, "not a whole number"),
        ("-1", "not a whole number"),
        (0, "at least 1"),
    ],
)
def test_the_whole_number_parser_says_why(value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        whole_number(value, minimum=1)


def test_argument_errors_are_provider_errors_and_value_errors() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        serve(if_exists="replace")
    assert isinstance(err.value, KubeAISpeechError) and isinstance(err.value, ValueError)
    with pytest.raises(InvalidArgumentError, match="replicas=-1: a replica count"):
        ScaleSpeechModelOperator(task_id="scale", model_name="whisper", replicas=-1)
    with pytest.raises(SpeechModelSpecError, match="min_ready_replicas=0 must be at least 1"):
        serve(min_ready_replicas=0)


def test_the_old_listing_names_are_deprecated_aliases() -> None:
    from airflow.exceptions import AirflowProviderDeprecationWarning

    hook = KubeAISpeechHook("nowhere")
    hook.__dict__["models"] = models = mock.MagicMock()
    hook.__dict__["endpoint"] = endpoint = mock.MagicMock()
    with pytest.warns(AirflowProviderDeprecationWarning, match="list_model_resources"):
        assert hook.list_model_objects("team=asr") is models.list.return_value
    with pytest.warns(AirflowProviderDeprecationWarning, match="list_served_models"):
        assert hook.list_models() is endpoint.list_models.return_value
    assert hook.list_model_resources() is models.list.return_value
    assert hook.list_served_models("SpeechToText") is endpoint.list_models.return_value


def test_the_hook_refuses_an_immutable_change_before_the_request() -> None:
    """check_update lives in the hook: serve hands it the Model it read, the hook refuses first."""
    hook = KubeAISpeechHook("nowhere", namespace="kubeai")
    hook.__dict__["models"] = models = mock.MagicMock()
    spec = build_speech_model_spec({"model_name": "whisper", "url": URL, "cache_profile": "fast"})
    existing = {"spec": {**spec.kubeai_spec(), "url": "hf://Systran/faster-whisper-small"}}
    with pytest.raises(SpeechModelSpecError):
        hook.apply_model(spec, existing=existing)
    models.apply.assert_not_called()
    hook.apply_model(spec)  # without what it read, the API server is the judge
    models.apply.assert_called_once()


def test_serve_refuses_unsupported_parameters_with_the_spec_s_message() -> None:
    with pytest.raises(
        SpeechModelSpecError, match=r"volumes=\['x'\] is not supported: a KubeAI Model cannot"
    ):
        serve(volumes=["x"])


def test_every_provider_error_declares_its_attempts() -> None:
    err = ModelNotFoundError("gone")
    assert err.attempts == 0
    err.attempts = 3  # the endpoint client counts the requests made for any provider error
    assert err.attempts == 3 and KubeAISpeechError("x").attempts == 0


def test_require_model_name_takes_an_adapter_where_requests_do() -> None:
    from airflow_provider_kubeai_speech.spec import require_model_name

    assert require_model_name("whisper_legal", adapter=True) == "whisper_legal"
    with pytest.raises(SpeechModelSpecError):
        require_model_name("whisper_legal")  # a Model's own name has no adapter
    for bad in ("Whisper_legal", "whisper_Legal!", "_legal"):
        with pytest.raises(SpeechModelSpecError):
            require_model_name(bad, adapter=True)


def test_serve_refuses_a_bad_endpoint_setting_before_the_first_cluster_call() -> None:
    """The connection split reads only the cluster settings for the cluster side, but serve's
    result (base_url) and its warm-up need the endpoint's: a connection that would send its token
    in cleartext must fail before the Model is created and waited for, not after (on every retry,
    leaving the Model it created running)."""
    connection = SimpleNamespace(
        host="http://kubeai.example.com", schema="", port=None, password="s3cret", extra="", extra_dejson={}
    )
    op = serve(wait_for_ready=False)
    hook = KubeAISpeechHook("kubeai_speech_default")
    hook.__dict__["models"] = models = mock.MagicMock()
    models.find.return_value = (None, "1")
    op.__dict__["hook"] = hook
    with (
        mock.patch.object(KubeAISpeechHook, "get_connection", return_value=connection),
        pytest.raises(KubeAISpeechError, match="in cleartext"),
    ):
        op.execute(context())
    models.apply.assert_not_called()
    models.find.assert_not_called()
