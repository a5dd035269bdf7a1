"""DAGs the scale benchmark runs under dag.test(): one task on the whole batch, and the same batch in 8 shards."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.transcription.shards import speech_shards

START = pendulum.datetime(2026, 1, 1, tz="UTC")
CONCURRENCY = 16  # dag.test() runs one task at a time: each shard alone sees the whole capacity

with DAG("bench_one_task", schedule=None, start_date=START, params={"audio": "", "output": ""}):
    InvokeSpeechOperator(
        task_id="transcribe", model_name="whisper", audio="{{ params.audio }}", output_path="{{ params.output }}",
        response_format="text", max_concurrency=CONCURRENCY, progress_interval=60,
    )  # fmt: skip

with DAG("bench_8_shards", schedule=None, start_date=START, params={"audio": "", "output": ""}):
    InvokeSpeechOperator.partial(
        task_id="transcribe", model_name="whisper", audio="{{ params.audio }}", output_path="{{ params.output }}",
        response_format="text", max_concurrency=CONCURRENCY, progress_interval=60,
    ).expand_kwargs(speech_shards(8))  # fmt: skip
