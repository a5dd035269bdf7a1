"""Test DAG for InvokeSpeechOperator (parameters come from the run's conf)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator

PARAMS = {
    "model": "whisper",
    "audio": "",
    "output": None,
    "format": "json",
    "concurrency": 8,
    "max_failed": 0,
    "attempts": 5,
    "chunk_seconds": None,
    "overlap": 2.0,
}

with DAG(
    "test_invoke",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    params=PARAMS,
    render_template_as_native_obj=True,
):
    InvokeSpeechOperator(
        task_id="transcribe",
        model_name="{{ params.model }}",
        audio="{{ params.audio }}",
        output_path="{{ params.output }}",
        response_format="{{ params.format }}",
        max_concurrency="{{ params.concurrency }}",  # type: ignore[arg-type]
        max_failed="{{ params.max_failed }}",  # type: ignore[arg-type]
        max_attempts="{{ params.attempts }}",  # type: ignore[arg-type]
        chunk_seconds="{{ params.chunk_seconds }}",  # type: ignore[arg-type]
        chunk_overlap_seconds="{{ params.overlap }}",  # type: ignore[arg-type]
        progress_interval=1,
        retries=0,
    )
