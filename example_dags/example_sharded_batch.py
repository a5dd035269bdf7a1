"""One day's recordings over several Airflow tasks: serve, wait, transcribe in N shards, gather, scale to zero.

Each mapped ``transcribe_shard`` task takes the recordings the sha256 of their location assigns to
its shard (a retry of shard ``k`` gets the same files), and all of them write one output folder:
each task appends to its own manifest part under ``_transcriptions/``, so no two ever write the
same file. The ``kubeai_whisper`` pool bounds how many shards send at once, so the total
concurrency against the Model is ``pool slots x max_concurrency`` however many shards there are
(create it first: ``airflow pools set kubeai_whisper 2 "whisper-small-en: 2 replicas x 4"``).

Shards do not fail on bad recordings of their own: ``gather`` reads every manifest part, reports the
totals and the first failures, and fails the run when failures over all shards exceed
``max_failed`` (a count, or a fraction of the day's recordings below 1).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator
from airflow_provider_kubeai_speech.operators.serve import ServeSpeechModelOperator
from airflow_provider_kubeai_speech.operators.teardown import ScaleSpeechModelOperator
from airflow_provider_kubeai_speech.sensors.model_ready import SpeechModelReadySensor
from airflow_provider_kubeai_speech.transcription.shards import speech_shards

SHARDS = 4
POOL = "kubeai_whisper"
DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
MODEL = "{{ ti.xcom_pull(task_ids='serve_model')['model'] }}"

with DAG(
    dag_id="kubeai_sharded_batch",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "input_root": Param("/data/calls", type="string", description="one sub-folder per day"),
        "output_root": Param("/data/transcripts", type="string"),
        "max_failed": Param(0.02, type="number", minimum=0, description="over all shards"),
    },
    tags=["kubeai", "speech", "example"],
) as dag:
    serve = ServeSpeechModelOperator(
        task_id="serve_model",
        model_name="whisper-small-sharded",
        url="hf://Systran/faster-whisper-small.en",
        profile="cpu",
        processors=2,
        scaling={"min_replicas": 0, "max_replicas": 2, "target_request": 4, "scale_down_delay_seconds": 300},
        replicas=2,
        wait_for_ready=False,
    )
    wait = SpeechModelReadySensor(
        task_id="wait_until_ready",
        model_name=MODEL,
        min_ready_replicas=2,
        deferrable=True,
        timeout=1800,
        retries=1,
    )

    # [START howto_shards]
    transcribe = InvokeSpeechOperator.partial(
        task_id="transcribe_shard",
        model_name=MODEL,
        audio="{{ params.input_root }}/" + DAY,
        output_path="{{ params.output_root }}/" + DAY,
        language="en",
        max_concurrency=4,  # per shard; the pool's 2 slots make it 2 x 4 = 8 = 2 replicas x 4
        max_failed=10**9,  # a shard never fails on bad recordings: gather judges the budget over all shards
        pool=POOL,
        pool_slots=1,
        retries=2,  # a retry of shard k gets the same files and sends only those not yet done
    ).expand_kwargs(speech_shards(SHARDS))
    # [END howto_shards]

    # [START howto_gather]
    @task
    def gather(shards: list[dict[str, Any]]) -> dict[str, Any]:
        """Totals over every shard's manifest part; fails when failures exceed the day's budget."""
        from airflow_provider_kubeai_speech.transcription.batch import FAILURES_SHOWN, failure_budget
        from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_state

        context = get_current_context()
        params = context["params"]
        run = context["dag_run"]
        day = (run.logical_date or run.run_after).strftime("%Y-%m-%d")
        state = read_manifest_state(f"{params['output_root']}/{day}")
        statuses = [record.get("status") for record in state.last.values()]
        failures = [
            {"input": uri, "error": record.get("error")}
            for uri, record in sorted(state.last.items())
            if record.get("status") == "failed"
        ]
        total = len(statuses)
        budget = failure_budget(float(params["max_failed"]), total)
        summary = {
            "total": total,
            "succeeded": statuses.count("ok"),
            "skipped": statuses.count("skipped"),
            "failed": len(failures),
            "budget": budget,
            "shards": len(shards),
            "manifest_parts": state.parts,
            "failures": failures[:FAILURES_SHOWN],
        }
        if len(failures) > budget:
            shown = "\n".join(f"  - {f['input']}: {f['error']}" for f in failures[:FAILURES_SHOWN])
            raise RuntimeError(
                f"{len(failures)} of {total} recording(s) failed over {len(shards)} shards, more than "
                f"max_failed={params['max_failed']} allows ({budget}):\n{shown}"
            )
        return summary

    # [END howto_gather]

    scale_to_zero = ScaleSpeechModelOperator(task_id="scale_to_zero", model_name=MODEL, replicas=0)

    totals = gather(transcribe.output)
    serve >> wait >> transcribe
    totals >> scale_to_zero.as_teardown(setups=serve)
