"""The example batch DAG under a real deployment (PostgreSQL, scheduler, dag-processor, triggerer,
api-server; LocalExecutor) beside ``dag.test()``, against one sandbox process.

Figures: the time from the Model being ready (2 replicas, polled every 50 ms) to the deferred
sensor having resumed and finished (its end_date in the metadata database), under the real
triggerer; and a whole DAG run (trigger to success) under the real scheduler against the same run
with ``dag.test()``, as a ratio.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, record

from tests.deployment.harness import Deployment, Postgres, SandboxServer, Unavailable, make_base

DAG_ID = "kubeai_batch_transcription"
MODEL = "whisper-small-en"
RUNS = 2
STARTUP = 12.0  # long enough for the deferring task process to exit before the trigger fires

DAG_TEST = """
import os, sys, time, json
from airflow.utils.db import resetdb
resetdb()
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags[sys.argv[1]]
started = time.monotonic()
run = dag.test(run_conf=json.loads(sys.argv[2]), logical_date=None)
print("RESULT", run.state, time.monotonic() - started)
"""


def ready_at(sandbox: SandboxServer, stop: threading.Event, marks: list[float]) -> None:
    was_ready = False
    while not stop.is_set():
        model = sandbox.model(MODEL) or {}
        ready = ((model.get("status") or {}).get("replicas") or {}).get("ready", 0) >= 2
        if ready and not was_ready:
            marks.append(time.time())
        was_ready = ready
        time.sleep(0.05)


def main() -> None:
    base = make_base()
    try:
        postgres = Postgres(base)
    except Unavailable as err:
        print(f"skipped: {err}")
        return
    sandbox = SandboxServer(
        base, "--restricted-role", "--startup-delay", str(STARTUP), "--latency-per-request", "0.05"
    )
    calls = base / "calls"
    deploy = Deployment(base, postgres, sandbox, sorted((ROOT / "example_dags").glob("*.py")))
    resumed, real_runs = [], []
    try:
        started = time.monotonic()
        deploy.migrate()
        deploy.start_all()
        deploy.wait_for_dags([DAG_ID])
        print(f"  deployment up in {time.monotonic() - started:.0f} s")
        conf = {"input_root": str(calls), "output_root": str(base / "out")}
        for run in range(RUNS):
            shutil.rmtree(base / "out", ignore_errors=True)
            day = time.strftime("%Y-%m-%d", time.gmtime())
            shutil.rmtree(calls, ignore_errors=True)
            shutil.copytree(
                ROOT / "example_dags" / "data" / "audio", calls / day, ignore=shutil.ignore_patterns("*.txt")
            )
            marks: list[float] = []
            stop = threading.Event()
            sampler = threading.Thread(target=ready_at, args=(sandbox, stop, marks), daemon=True)
            sampler.start()
            t0 = time.monotonic()
            run_id = deploy.trigger(DAG_ID, conf)
            state = deploy.wait_for_run(DAG_ID, run_id, timeout=300)
            real_runs.append(time.monotonic() - t0)
            stop.set()
            sampler.join()
            wait = deploy.task(DAG_ID, run_id, "wait_until_ready")
            assert state == "success" and marks, (state, marks)
            resumed.append(wait["end_date"].timestamp() - marks[0])
            print(
                f"  run {run + 1}: {real_runs[-1]:.1f} s, sensor done {resumed[-1]:.2f} s after the Model was ready"
            )
    finally:
        deploy.stop_all()
        postgres.stop()

    # the same run with dag.test(): in-process, sqlite, triggers run inline
    home = Path(tempfile.mkdtemp(prefix="kubeai-bench-dagtest-"))
    (home / "dags").mkdir()
    shutil.copy(ROOT / "example_dags" / "kubeai_batch_transcription.py", home / "dags")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(sandbox.connections())
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    import json

    shutil.rmtree(base / "out", ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", DAG_TEST, DAG_ID, json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    sandbox.stop()
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT")), "")
    assert line.split()[1:2] == ["success"], done.stdout[-2000:] + done.stderr[-3000:]
    dag_test = float(line.split()[2])
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    real = statistics.median(real_runs)
    record(
        "deployment",
        [
            {
                "metric": "Model ready -> deferred sensor resumed and done, real triggerer (median)",
                "value": round(statistics.median(resumed), 2),
                "unit": "s",
                "note": f"{RUNS} runs: " + ", ".join(f"{x:.2f}" for x in resumed),
            },
            {
                "metric": "whole batch DAG run: real scheduler / dag.test() (median of runs)",
                "value": round(real / dag_test, 2),
                "unit": "x",
                "note": f"{real:.1f} s vs {dag_test:.1f} s; both wait {STARTUP:g} s for pods to start",
            },
        ],
    )


if __name__ == "__main__":
    main()
