"""Transcribe hour-long meeting recordings: each cut into pieces that four replicas work on at once.

One request uses one KubeAI replica however many are ready, and KubeAI's proxy holds a whole
upload in memory. With ``chunk_seconds``, a recording longer than that is decoded (MP3, M4A/AAC,
OGG/Opus, FLAC, WAV: the ``audio`` extra), cut at pauses into pieces, the pieces transcribed in
parallel and stitched into one SRT per recording with times on the recording's clock. If the task
fails part way, the finished pieces are kept and its retry sends only the others.

The scale-to-zero step is the serve step's teardown: it runs whatever happened, and the run's
state is still the transcription's (a failed transcription fails the run). Runs of this DAG share
one Model, so only one runs at a time: a run's teardown cannot scale the Model to zero under
another run still transcribing.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator

# The run's day, with or without a logical date.
DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="kubeai_long_recordings",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "meetings": Param("/data/meetings", type="string", description="one sub-folder per day"),
        "subtitles": Param("/data/subtitles", type="string"),
        "chunk_seconds": Param(300, type="number", minimum=10),
    },
    render_template_as_native_obj=True,
    tags=["kubeai", "speech", "example"],
) as dag:
    serve = ServeSpeechModelOperator(
        task_id="serve_model",
        model_name="whisper-meetings",
        url="hf://Systran/faster-whisper-medium.en",
        profile="cpu",
        processors=4,
        replicas=4,
        scaling={"min_replicas": 4, "max_replicas": 4},
    )

    # [START howto_long_recordings]
    transcribe = InvokeSpeechOperator(
        task_id="transcribe_meetings",
        model_name="{{ ti.xcom_pull(task_ids='serve_model')['model'] }}",
        audio="{{ params.meetings }}/" + DAY,
        output_path="{{ params.subtitles }}/" + DAY,
        response_format="srt",
        chunk_seconds="{{ params.chunk_seconds }}",  # 300: 5-minute pieces
        chunk_overlap_seconds=2,  # words near a cut are heard whole by one of the two pieces
        max_concurrency=4,  # one piece per replica
        retries=2,  # a retry re-sends only the pieces that have no transcript yet
    )
    # [END howto_long_recordings]

    idle = ScaleSpeechModelOperator(
        task_id="scale_to_zero",
        model_name="{{ ti.xcom_pull(task_ids='serve_model')['model'] }}",
        replicas=0,
    )

    serve >> transcribe >> idle.as_teardown(setups=serve)
