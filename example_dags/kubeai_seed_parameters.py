"""Every parameter of DigitalHub's ``kubeai-speech`` function kind, mapped to KubeAI.

Serves a model with scaling and load balancing, files, environment, secrets and a cache
profile, checks it with one transcription, then deletes it. Parameters KubeAI cannot express
per model (node_selector, volumes, resources, affinity, tolerations, service_type,
service_name) are refused with the reason; see the docs' parameter table.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import DeleteSpeechModelOperator

with DAG(
    dag_id="kubeai_seed_parameters",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the runs share one Model: a run's teardown must not delete it under another
    params={"sample": "/data/calls/sample.wav"},
    tags=["kubeai", "speech", "example"],
) as dag:
    # [START howto_seed_parameters]
    serve = ServeSpeechModelOperator(
        task_id="serve_full_spec",
        name="support-calls",  # DigitalHub's function name; model_name wins when both are given
        model_name="whisper-medium-support",
        kind="kubeai-speech",
        url="hf://Systran/faster-whisper-medium.en",
        image="fedirz/faster-whisper-server:latest-cpu",
        description="Support-call transcription for the nightly QA pipeline",
        labels=["team=contact-centre", "pii"],  # DigitalHub's list form; a dict works too
        env={"WHISPER__COMPUTE_TYPE": "int8"},
        envs=[{"name": "WHISPER__CPU_THREADS", "value": "4"}],
        args=["--log-level", "info"],
        files=[{"path": "/config/hotwords.txt", "content": "KubeAI\nAirflow\n"}],
        secrets=["hf-token"],  # envFrom: [{secretRef: {name: hf-token}}]
        cache_profile="standard-filesystem",
        profile="cpu",
        processors=4,  # resourceProfile "cpu:4"
        scaling={
            "replicas": 1,
            "min_replicas": 1,
            "max_replicas": 4,
            "autoscaling_disabled": False,
            "target_request": 8,  # the kubeai-speech function's spelling; DigitalHub dropped it, this provider does not
            "scale_down_delay_seconds": 120,
            "load_balancing": {
                "strategy": "PrefixHash",
                "prefix_hash": {"mean_load_factor": 125, "replication": 256, "prefix_char_length": 100},
            },
        },
        if_exists="update",
        timeout=1800,
    )
    # [END howto_seed_parameters]

    check = InvokeSpeechOperator(
        task_id="check_one_file",
        model_name="{{ ti.xcom_pull(task_ids='serve_full_spec')['model'] }}",
        audio="{{ params.sample }}",
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
        extra_fields={"hotwords": "KubeAI Airflow", "vad_filter": True},
    )

    delete = DeleteSpeechModelOperator(task_id="delete_model", model_name="whisper-medium-support")

    serve >> check >> delete.as_teardown(setups=serve)
