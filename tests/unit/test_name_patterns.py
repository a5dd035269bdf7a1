"""Name validation matches the whole value: a trailing newline is not a valid name anywhere (#14.18).

``re.match`` with ``^...$`` lets ``'whisper-nl\\n'`` through (``$`` also matches before a final
newline); the provider, the operators and the sandbox all anchor at the very end instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_core import PydanticCustomError

from airflow_provider_kubeai_speech.spec import (
    SpeechModelSpecError,
    build_speech_model_spec,
    check_model_name,
)
from local_kubeai import kube_errors
from local_kubeai.crd import model_crd
from local_kubeai.store import ModelStore

BASE: dict[str, Any] = {"model_name": "whisper-tiny", "url": "hf://openai/whisper-tiny"}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"model_name": "whisper-nl\n"}, id="model-name"),
        pytest.param({"labels": {"team\n": "a"}}, id="label-key"),
        pytest.param({"labels": {"example.com\n/team": "a"}}, id="label-prefix"),
        pytest.param({"labels": {"team": "speech\n"}}, id="label-value"),
        pytest.param({"secrets": ["whisper-credentials\n"]}, id="secret"),
        pytest.param({"profile": "cpu\n"}, id="profile"),
    ],
)
def test_a_trailing_newline_is_refused_in_the_spec(params: dict[str, Any]) -> None:
    with pytest.raises(SpeechModelSpecError, match="Fix"):
        build_speech_model_spec({**BASE, **params}).to_manifest("kubeai")


def test_model_name_and_namespace_with_a_newline() -> None:
    with pytest.raises(PydanticCustomError, match="not a valid Model name"):
        check_model_name("whisper-nl\n")
    with pytest.raises(SpeechModelSpecError, match="not a valid namespace name"):
        build_speech_model_spec(BASE).to_manifest("kubeai\n")
    with pytest.raises(SpeechModelSpecError, match="label"):
        build_speech_model_spec(BASE).to_manifest("kubeai", extra_labels={"airflow-dag": "d\n"})


def _model(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    manifest = build_speech_model_spec(BASE).to_manifest("kubeai")
    manifest["metadata"]["name"] = name
    if labels is not None:
        manifest["metadata"]["labels"] = labels
    return manifest


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("whisper-nl\n", None, id="name"),
        pytest.param("whisper", {"team\n": "a"}, id="label-key"),
        pytest.param("whisper", {"team": "a\n"}, id="label-value"),
        pytest.param("whisper", {"example.com\n/team": "a"}, id="label-prefix"),
    ],
)
def test_the_sandbox_refuses_a_trailing_newline_as_kubernetes_does(
    name: str, labels: dict[str, str] | None
) -> None:
    store = ModelStore(model_crd())
    with pytest.raises(kube_errors.ApiError) as err:
        store.create("kubeai", _model(name, labels), "test")
    assert err.value.code == 422
    assert store.list_objects(None)[0] == []


@pytest.mark.parametrize("name", ["whisper-nl\n", "Whisper", "", "x" * 41])
def test_teardowns_and_the_sensor_refuse_what_is_not_a_model_name(name: str) -> None:
    """Issue 14.18: a name with a trailing newline never reaches the API (it would match nothing,
    and a 404-tolerant teardown would report success while the held capacity stays)."""
    from airflow_provider_kubeai_speech.operators.teardown import (
        DeleteSpeechModelOperator,
        ScaleSpeechModelOperator,
    )
    from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor
    from airflow_provider_kubeai_speech.spec import SpeechModelSpecError

    for make in (DeleteSpeechModelOperator, ScaleSpeechModelOperator, SpeechModelReadySensor):
        with pytest.raises(SpeechModelSpecError, match="model_name"):
            make(task_id="t", model_name=name)


def test_a_rendered_teardown_name_is_checked_before_any_cluster_call() -> None:
    from unittest import mock

    from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator
    from airflow_provider_kubeai_speech.spec import SpeechModelSpecError

    op = ScaleSpeechModelOperator(task_id="t", model_name="{{ params.m }}")
    op.model_name = "whisper-nl\n"  # as rendered
    with mock.patch.object(ScaleSpeechModelOperator, "hook") as hook, pytest.raises(SpeechModelSpecError):
        op.execute({})  # type: ignore[arg-type]
    assert not hook.method_calls


def test_a_model_name_from_xcom_is_checked_once_resolved() -> None:
    """An XComArg (``serve.output["model"]``) is only known at run time: no parse-time refusal."""
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
    from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator
    from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor

    with DAG("xcom_names", start_date=pendulum.datetime(2026, 12, 1), schedule=None):
        serve = ServeSpeechModelOperator(
            task_id="serve", model_name="m", url="hf://a/b", wait_for_ready=False
        )
        wait = SpeechModelReadySensor(task_id="wait", model_name=serve.output["model"])
        down = ScaleSpeechModelOperator(task_id="down", model_name=serve.output["model"])
    assert wait.model_name is not None and down.model_name is not None
