"""Keep a speech model warm across runs and transcribe the files an upstream task lists.

The model stays at ``min_replicas: 1`` between runs (no teardown), so every hourly run starts
transcribing at once. The upstream task decides what to transcribe (here: recordings newer than
the last run) and hands the list over through XCom.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator

with DAG(
    dag_id="kubeai_warm_model_from_xcom",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    params={"inbox": Param("/data/inbox", type="string"), "outbox": Param("/data/outbox", type="string")},
    tags=["kubeai", "speech", "example"],
) as dag:
    # [START howto_warm]
    keep_warm = ServeSpeechModelOperator(
        task_id="keep_model_warm",
        model_name="whisper-base-en",
        url="hf://Systran/faster-whisper-base.en",
        scaling={"min_replicas": 1, "max_replicas": 3},
        if_exists="update",  # an unchanged spec is a no-op: no restart, no new resourceVersion
        warm_up=True,  # the first request loads the weights; do it before the batch
    )
    # [END howto_warm]

    @task
    def new_recordings(inbox: str) -> list[str]:
        """Recordings in the inbox, oldest first (any list of paths or URIs works)."""
        names = sorted(name for name in os.listdir(inbox) if name.endswith((".wav", ".flac", ".mp3")))
        return [os.path.join(inbox, name) for name in names]

    # [START howto_xcom_list]
    transcribe = InvokeSpeechOperator(
        task_id="transcribe_new",
        model_name="{{ ti.xcom_pull(task_ids='keep_model_warm')['model'] }}",
        audio=new_recordings("{{ params.inbox }}"),
        output_path="{{ params.outbox }}",
        response_format="srt",
        max_concurrency=4,
    )
    # [END howto_xcom_list]

    keep_warm >> transcribe
