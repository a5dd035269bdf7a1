"""DAGs the throughput benchmark runs: the operator on the whole batch, and one mapped task per file."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG(
    "bench_operator",
    schedule=None,
    start_date=START,
    params={"audio": "", "output": ""},
    render_template_as_native_obj=True,
):
    InvokeSpeechOperator(
        task_id="transcribe", model_name="whisper", audio="{{ params.audio }}", output_path="{{ params.output }}",
        response_format="text", max_concurrency=8, progress_interval=60,
    )  # fmt: skip

with DAG(
    "bench_mapped",
    schedule=None,
    start_date=START,
    params={"files": [], "output": ""},
    render_template_as_native_obj=True,
):
    InvokeSpeechOperator.partial(
        task_id="transcribe_one", model_name="whisper", output_path="{{ params.output }}", response_format="text",
        max_concurrency=1, progress_interval=60,
    ).expand(audio=[f"{{{{ params.files[{i}] }}}}" for i in range(50)])  # fmt: skip
