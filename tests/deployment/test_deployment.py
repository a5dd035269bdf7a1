"""The example batch DAG under a real deployment: PostgreSQL, scheduler, dag-processor, triggerer and
api-server as separate processes (LocalExecutor), against the sandbox in a process of its own with
the least-privileged identity (docs/operators.rst) and its KubeAI-like autoscaler.

Issue 17: what ``dag.test()`` never shows (a trigger really run by the triggerer, a killed triggerer,
a killed task process, a nightly run after an idle day, a run without a logical date).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pendulum
import pytest
import requests

from airflow_provider_kubeai_speech.spec import build_speech_model_spec
from airflow_provider_kubeai_speech.transcription.manifest import read_manifest_records
from local_kubeai.engines import file_digest
from tests.audio_files import make_wavs
from tests.deployment.harness import (
    ROOT,
    Deployment,
    Postgres,
    SandboxServer,
    Unavailable,
    make_base,
    wait_for,
)

pytestmark = pytest.mark.slow

DAG_ID = "kubeai_batch_transcription"
MODEL = "whisper-small-en"
SAMPLES = ROOT / "example_dags" / "data" / "audio"
# Seconds from pod creation to Ready: long enough to kill the triggerer while the sensor is
# deferred, and for the deferring task process to have exited before the trigger fires. (Airflow
# 3.3.2 fails a task whose trigger fires before the scheduler has processed the deferring
# process's exit: "finished with state success, but the task instance's state attribute is
# queued". That process took 5 s to exit here.)
STARTUP = 20.0


@pytest.fixture(scope="module")
def deployment() -> Any:
    base = make_base()
    try:
        postgres = Postgres(base)
    except Unavailable as err:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"no PostgreSQL for the deployment tests: {err}")
    sandbox = SandboxServer(
        base,
        "--restricted-role",
        "--startup-delay", str(STARTUP),
        "--startup-stagger", "1",
        "--autoscale-interval", "0.05",  # KubeAI's 10 s, 200 times faster: 300 s of delay is 15 s
        "--autoscale-window", "3",
        "--latency-per-request", "0.5",
        "--replica-concurrency", "4",
    )  # fmt: skip
    deploy = Deployment(base, postgres, sandbox, sorted((ROOT / "example_dags").glob("*.py")))
    try:
        deploy.migrate()
        deploy.start_all()
        deploy.wait_for_dags([DAG_ID])
        yield deploy
    finally:
        deploy.stop_all()
        sandbox.stop()
        postgres.stop()
        if os.environ.get("KUBEAI_SPEECH_KEEP_DEPLOYMENT"):
            print(f"deployment kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


class ModelSampler(threading.Thread):
    """Samples the Model every 0.1 s: when 2 replicas were first ready, and spec.replicas while held."""

    def __init__(self, sandbox: SandboxServer) -> None:
        super().__init__(daemon=True)
        self.sandbox = sandbox
        self.stop = threading.Event()
        self.ready_at: float | None = None
        self.held_replicas: list[int] = []

    def run(self) -> None:
        while not self.stop.is_set():
            model = self.sandbox.model(MODEL) or {}
            spec, status = model.get("spec", {}), model.get("status") or {}
            if spec.get("minReplicas", 0) >= 2:
                self.held_replicas.append(int(spec.get("replicas") or 0))
            if self.ready_at is None and (status.get("replicas") or {}).get("ready", 0) >= 2:
                self.ready_at = time.time()
            time.sleep(0.1)


def idle_for_a_day(sandbox: SandboxServer) -> None:
    """The Model as the autoscaler leaves it after a quiet day: at zero replicas, minReplicas 0.

    (That the autoscaler takes an applied ``replicas=2`` straight back from such a Model, which made
    the nightly run hang, is shown against the sandbox's autoscaler in
    tests/integration/test_autoscaling.py; the example's 300 s scale-down delay is wall time.)
    """
    spec = build_speech_model_spec(
        {
            "model_name": MODEL,
            "url": "hf://Systran/faster-whisper-small.en",
            "processors": 2,
            "replicas": 0,
            "scaling": {
                "min_replicas": 0,
                "max_replicas": 2,
                "target_request": 4,
                "scale_down_delay_seconds": 300,
            },
        }
    )
    sandbox.custom_objects().create_namespaced_custom_object(
        "kubeai.org", "v1", "kubeai", "models", spec.to_manifest("kubeai")
    )
    wait_for(lambda: ((sandbox.model(MODEL) or {}).get("status") or {}).get("replicas"), 30, "status written")


def test_nightly_run_after_an_idle_day_defers_survives_a_killed_triggerer(
    deployment: Deployment, tmp_path: Path
) -> None:
    sandbox = deployment.sandbox
    idle_for_a_day(sandbox)
    shutil.copytree(SAMPLES, tmp_path / "calls" / "2026-11-24", ignore=shutil.ignore_patterns("*.txt"))
    sampler = ModelSampler(sandbox)
    sampler.start()
    run_id = deployment.trigger(
        DAG_ID,
        {"input_root": str(tmp_path / "calls"), "output_root": str(tmp_path / "out")},
        logical_date="2026-11-24T00:00:00+00:00",
    )

    def deferred_trigger() -> tuple[Any, ...] | None:
        deployment.check_alive()
        rows = deployment.postgres.query(
            "select t.id, t.classpath, t.triggerer_id, j.job_type from task_instance ti "
            "join trigger t on t.id = ti.trigger_id left join job j on j.id = t.triggerer_id "
            "where ti.dag_id=%s and ti.run_id=%s and ti.task_id='wait_until_ready' and ti.state='deferred'",
            DAG_ID,
            run_id,
        )
        return rows[0] if rows and rows[0][2] is not None else None

    trigger_id, classpath, first_triggerer, job_type = wait_for(deferred_trigger, 180, "sensor deferred")
    assert classpath.endswith("triggers.model_ready.SpeechModelReadyTrigger")
    assert job_type == "TriggererJob"  # run by the triggerer process, not inline

    deployment.kill("triggerer")  # SIGKILL while the task is deferred
    deployment.start("triggerer")

    def taken_over() -> bool:
        rows = deployment.postgres.query("select triggerer_id from trigger where id=%s", trigger_id)
        return not rows or rows[0][0] not in (None, first_triggerer)

    wait_for(taken_over, 180, "the trigger taken over by the new triggerer")  # or already fired by it

    state = deployment.wait_for_run(DAG_ID, run_id, timeout=240)
    sampler.stop.set()
    sampler.join()
    assert state == "success", deployment.logs_of("scheduler")[-4000:]

    wait = deployment.task(DAG_ID, run_id, "wait_until_ready")
    assert wait["state"] == "success" and wait["try_number"] == 1  # resumed, not retried
    moved = deployment.postgres.query("select count(*) from trigger where id=%s", trigger_id)[0][0]
    assert moved == 0  # fired and cleaned up, by the new triggerer
    # point 4: the triggerer's event loop is not held by this trigger (it was for 6.7 s when the
    # trigger module imported the Kubernetes clients; Airflow warns above 0.2 s)
    stalls = [
        float(s)
        for s in re.findall(r"async thread was blocked for ([\d.]+) seconds", deployment.logs_of("triggerer"))
    ]
    assert max(stalls, default=0.0) < 1.5, stalls

    # point 1: capacity held (the autoscaler never took spec.replicas below 2 while held), and
    # the wait ended within a minute of the Model being ready, not at its 1800 s timeout
    assert sampler.ready_at is not None
    assert sampler.held_replicas and min(sampler.held_replicas) >= 2, sampler.held_replicas
    assert wait["end_date"].timestamp() - sampler.ready_at < 60
    out = tmp_path / "out" / "2026-11-24"
    assert len(list(out.glob("*.json"))) == 5
    model = sandbox.model(MODEL) or {}
    assert (model["spec"]["replicas"], model["spec"]["minReplicas"]) == (0, 0)  # given back


def test_a_killed_task_resumes_without_resending_and_no_logical_date(
    deployment: Deployment, tmp_path: Path
) -> None:
    sandbox = deployment.sandbox
    today = pendulum.now("UTC")
    files = make_wavs(tmp_path / "calls" / today.to_date_string(), 120, seconds=0.3)
    shutil.copytree(
        tmp_path / "calls" / today.to_date_string(), tmp_path / "calls" / today.add(days=1).to_date_string()
    )
    requests.delete(f"{sandbox.info['kubeai_url']}/sandbox/stats", timeout=10)
    run_id = deployment.trigger(
        DAG_ID, {"input_root": str(tmp_path / "calls"), "output_root": str(tmp_path / "out")}
    )
    ((logical_date, run_after),) = deployment.postgres.query(
        "select logical_date, run_after from dag_run where dag_id=%s and run_id=%s", DAG_ID, run_id
    )
    assert logical_date is None  # Airflow 3: a run without a logical date
    output = tmp_path / "out" / run_after.strftime("%Y-%m-%d")

    def transcribing() -> dict[str, Any] | None:
        deployment.check_alive()
        ti = deployment.task(DAG_ID, run_id, "transcribe_day")
        records = read_manifest_records(output) if output.exists() else []
        return ti if ti.get("state") == "running" and ti.get("pid") and len(records) >= 15 else None

    ti = wait_for(transcribing, 240, "the batch under way", interval=0.05)
    os.kill(ti["pid"], signal.SIGKILL)  # the task process, mid-batch
    finished = {record["input"] for record in read_manifest_records(output)}
    assert len(finished) < len(files), "the batch finished before the kill"

    state = deployment.wait_for_run(DAG_ID, run_id, timeout=240)
    assert state == "success", deployment.logs_of("scheduler")[-4000:]
    assert deployment.task(DAG_ID, run_id, "transcribe_day")["try_number"] >= 2  # the retry did the rest
    done = sandbox.stats()["completed_by_digest"]
    by_name = {p.name: file_digest(p) for p in files}
    resent = [
        name
        for name, digest in by_name.items()
        if any(name in f for f in finished) and done.get(digest, 0) > 1
    ]
    assert resent == []  # what the killed try had finished was not sent again
    assert all(done.get(d, 0) >= 1 for d in by_name.values())  # and everything was transcribed
    assert sum(done.values()) <= len(files) + 8  # at most the requests in flight at the kill, twice
