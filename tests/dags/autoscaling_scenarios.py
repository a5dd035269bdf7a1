"""Test DAGs for serving under KubeAI's autoscaler (parameters come from the run's conf)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator
from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor

# The nightly example's shape: serve 2 replicas (min 0) without waiting, a deferrable sensor
# waits for 2, the scale teardown gives the capacity back.
with DAG(
    "test_nightly_after_idle",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params={"scale_down_delay_seconds": 1},
    render_template_as_native_obj=True,
    max_active_runs=1,
):
    serve = ServeSpeechModelOperator(
        task_id="serve_model",
        model_name="nightly",
        url="hf://Systran/faster-whisper-small.en",
        replicas=2,
        scaling={
            "min_replicas": 0,
            "max_replicas": 2,
            "target_request": 4,
            "scale_down_delay_seconds": "{{ params.scale_down_delay_seconds }}",
        },
        wait_for_ready=False,
        retries=0,
    )
    wait = SpeechModelReadySensor(
        task_id="wait_until_ready",
        model_name="nightly",
        min_ready_replicas=2,
        deferrable=True,
        timeout=60,
        retries=0,
    )
    scale = ScaleSpeechModelOperator(task_id="scale_to_zero", model_name="nightly", replicas=0)
    serve >> wait >> scale.as_teardown(setups=serve)

# minReplicas stays 0 (hold_capacity=False): the warm-up request wakes the Model, KubeAI's way.
with DAG(
    "test_wake_by_request",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    max_active_runs=1,
):
    ServeSpeechModelOperator(
        task_id="serve_model",
        model_name="woken",
        url="hf://Systran/faster-whisper-small.en",
        scaling={"min_replicas": 0, "max_replicas": 1},
        hold_capacity=False,
        warm_up=True,
        timeout=30,
        retries=0,
    )
