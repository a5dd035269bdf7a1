"""Test DAGs for the serve, sensor and teardown steps (parameters come from the run's conf)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import (
    DeleteSpeechModelOperator,
    ScaleSpeechModelOperator,
)
from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
PARAMS = {
    "model": "whisper",
    "url": "hf://Systran/faster-whisper-tiny",
    "replicas": 1,
    "args": [],
    "timeout": 60,
    "min_replicas": 0,
}


def serve(task_id: str, **kwargs: object) -> ServeSpeechModelOperator:
    return ServeSpeechModelOperator(
        task_id=task_id,
        model_name="{{ params.model }}",
        url="{{ params.url }}",
        replicas="{{ params.replicas }}",  # type: ignore[arg-type]
        args="{{ params.args }}",  # type: ignore[arg-type]
        scaling={"min_replicas": "{{ params.min_replicas }}"},
        timeout="{{ params.timeout }}",  # type: ignore[arg-type]
        retries=0,
        **kwargs,
    )


for mode in ("update", "skip", "fail"):
    with DAG(
        f"test_serve_{mode}",
        schedule=None,
        start_date=START,
        params=PARAMS,
        render_template_as_native_obj=True,
    ):
        serve("serve", if_exists=mode)

with DAG(
    "test_serve_deferrable",
    schedule=None,
    start_date=START,
    params=PARAMS,
    render_template_as_native_obj=True,
):
    serve("serve", deferrable=True, warm_up=True)

with DAG(
    "test_serve_no_wait", schedule=None, start_date=START, params=PARAMS, render_template_as_native_obj=True
):
    serve("serve", wait_for_ready=False)

for deferrable in (False, True):
    suffix = "deferrable" if deferrable else "poke"
    with DAG(
        f"test_sensor_{suffix}",
        schedule=None,
        start_date=START,
        params=PARAMS,
        render_template_as_native_obj=True,
    ):
        SpeechModelReadySensor(
            task_id="wait",
            model_name="{{ params.model }}",
            deferrable=deferrable,
            poke_interval=0.2,
            timeout=5,
            retries=0,
        )

with DAG("test_teardown", schedule=None, start_date=START, params=PARAMS, render_template_as_native_obj=True):
    ScaleSpeechModelOperator(
        task_id="scale_to_zero", model_name="{{ params.model }}"
    ) >> DeleteSpeechModelOperator(task_id="delete", model_name="{{ params.model }}")
