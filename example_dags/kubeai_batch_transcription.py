"""Nightly batch transcription: serve a speech model, wait for it, transcribe the day's recordings,
scale the model to zero.

Every file in ``<input_root>/<day>/`` is transcribed into ``<output_root>/<day>/`` (one transcript per
recording plus the ``_transcriptions/`` manifest). A rerun of the same day, or a retry of a killed task,
sends only what is missing. A day without recordings (an empty or missing folder) serves nothing:
the first task counts the day's recordings and, finding none, skips the rest. ``<day>`` is the run's logical date, or, for a run triggered without
one (Airflow 3 allows that), the date it was triggered for.

KubeAI's autoscaler owns ``spec.replicas``: the serve task holds ``minReplicas`` at the 2 replicas
the sensor waits for, whatever the autoscaler decided overnight, and the teardown gives them back
(``minReplicas`` 0 again), so the Model costs nothing until tomorrow. One run at a time
(``max_active_runs=1``): a run's teardown must not take the capacity of another run of the same
Model.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator
from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor

# The run's day, with or without a logical date.
DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="kubeai_batch_transcription",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "input_root": Param(
            "/data/calls", type="string", description="folder or bucket with one sub-folder per day"
        ),
        "output_root": Param("/data/transcripts", type="string"),
        "response_format": Param("json", enum=["json", "text", "srt", "vtt", "verbose_json"]),
    },
    tags=["kubeai", "speech", "example"],
) as dag:
    # [START howto_check_inputs]
    @task.short_circuit
    def recordings_found(folder: str) -> bool:
        """False on a quiet night (no recordings): every later task is skipped, nothing is served."""
        from airflow_provider_kubeai_speech.transcription.sources import count_inputs

        return count_inputs(folder, missing_is_empty=True) > 0  # a day's folder never created: none

    check = recordings_found("{{ params.input_root }}/" + DAY)
    # [END howto_check_inputs]

    # [START howto_serve]
    serve = ServeSpeechModelOperator(
        task_id="serve_model",
        model_name="whisper-small-en",
        url="hf://Systran/faster-whisper-small.en",
        profile="cpu",
        processors=2,
        scaling={"min_replicas": 0, "max_replicas": 2, "target_request": 4, "scale_down_delay_seconds": 300},
        replicas=2,
        wait_for_ready=False,  # the sensor below waits, without holding a worker slot
    )
    # [END howto_serve]

    # [START howto_sensor]
    wait = SpeechModelReadySensor(
        task_id="wait_until_ready",
        model_name="{{ ti.xcom_pull(task_ids='serve_model')['model'] }}",
        min_ready_replicas=2,
        deferrable=True,
        timeout=1800,
        retries=1,  # Airflow's defer race (see the operators docs); a retry finds the Model ready
    )
    # [END howto_sensor]

    # [START howto_invoke]
    transcribe = InvokeSpeechOperator(
        task_id="transcribe_day",
        model_name="{{ ti.xcom_pull(task_ids='serve_model')['model'] }}",
        audio="{{ params.input_root }}/" + DAY,
        output_path="{{ params.output_root }}/" + DAY,
        response_format="{{ params.response_format }}",
        language="en",
        max_concurrency=8,  # 2 ready replicas x 4 requests each
        max_failed=0.02,  # tolerate up to 2 % bad recordings; the rest must succeed
        retries=2,  # a retry sends only the recordings that have no transcript yet
    )
    # [END howto_invoke]

    # [START howto_teardown]
    scale_to_zero = ScaleSpeechModelOperator(
        task_id="scale_to_zero",
        model_name="{{ ti.xcom_pull(task_ids='serve_model')['model'] }}",
        replicas=0,  # keeps KubeAI's model cache; restores the user's minReplicas (0)
    )
    # [END howto_teardown]

    check >> serve >> wait >> transcribe >> scale_to_zero.as_teardown(setups=serve)
