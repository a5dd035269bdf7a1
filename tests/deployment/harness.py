"""A real Airflow deployment for tests: PostgreSQL, scheduler, dag-processor, triggerer and
api-server as separate processes (LocalExecutor), against a sandbox in a process of its own.

Everything is started by PID and stopped by PID; nothing here is killed by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SH = Path(__file__).with_name("postgres.sh")
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")


class Unavailable(Exception):
    """PostgreSQL is not installed and cannot be installed here (the reason is the message)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


class Postgres:
    """A private PostgreSQL cluster from Debian's package (tests/deployment/postgres.sh)."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "postgres"
        self.port = free_port()
        done = subprocess.run(
            ["bash", str(POSTGRES_SH), "start", str(self.dir), str(self.port)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode == 3:
            raise Unavailable(done.stderr.strip())
        if done.returncode != 0:
            raise RuntimeError(f"postgres.sh start failed ({done.returncode}): {done.stderr[-2000:]}")
        self.url = done.stdout.strip().splitlines()[-1]

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="airflow")
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> None:
        subprocess.run(["bash", str(POSTGRES_SH), "stop", str(self.dir)], timeout=120, check=False)


class SandboxServer:
    """``python -m local_kubeai`` in its own process, logs to a file."""

    def __init__(self, base: Path, *args: str) -> None:
        self.state_dir = base / "sandbox"
        self.state_dir.mkdir(parents=True)
        self.log = (self.state_dir / "sandbox.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_kubeai",
                "--state-dir",
                str(self.state_dir),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError(f"sandbox did not start: {(self.state_dir / 'sandbox.log').read_text()}")
        self.info: dict[str, Any] = json.loads(line)

    def connections(self) -> dict[str, str]:
        env = {}
        for line in Path(self.info["connections_env"]).read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        return env

    def stats(self) -> dict[str, Any]:
        import requests

        return dict(requests.get(f"{self.info['kubeai_url']}/sandbox/stats", timeout=10).json())

    def custom_objects(self) -> Any:
        from kubernetes import client, config

        return client.CustomObjectsApi(config.new_client_from_config(self.info["kubeconfig"]))

    def model(self, name: str) -> dict[str, Any] | None:
        listed = self.custom_objects().list_namespaced_custom_object(
            "kubeai.org", "v1", self.info["namespace"], "models", field_selector=f"metadata.name={name}"
        )
        items = listed.get("items") or []
        return items[0] if items else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Deployment:
    """Airflow 3 as it runs in production, one process per component, on PostgreSQL.

    :param base: a folder for AIRFLOW_HOME, logs and the clusters' state.
    :param postgres: the metadata database.
    :param sandbox: the cluster the DAGs serve models on.
    :param dags: DAG files linked into the DAGs folder.
    """

    def __init__(self, base: Path, postgres: Postgres, sandbox: SandboxServer, dags: list[Path]) -> None:
        self.base = base
        self.postgres = postgres
        self.sandbox = sandbox
        self.home = base / "airflow-home"
        (self.home / "dags").mkdir(parents=True)
        for dag in dags:
            (self.home / "dags" / dag.name).symlink_to(dag)
        self.logs = base / "logs"
        self.logs.mkdir()
        self.api_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(self.sandbox.connections())
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                # runs only when triggered: the tests decide what runs, the timetables do not
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # a killed triggerer's triggers move to a live one after this long
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def airflow(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        return done.stdout

    def migrate(self) -> None:
        self.airflow("db", "migrate", timeout=600)

    def start(self, component: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{component}.log").open("ab")
        args = [AIRFLOW, component]
        if component == "api-server":
            args += ["--port", str(self.api_port), "--host", "127.0.0.1"]
        process = subprocess.Popen(
            args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes[component] = process
        return process

    def start_all(self) -> None:
        for component in COMPONENTS:
            self.start(component)

    def kill(self, component: str, sig: int = signal.SIGKILL) -> None:
        """Signal one component's process group (by its PID), and reap it."""
        process = self.processes.pop(component)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        for component in list(self.processes):
            with contextlib.suppress(ProcessLookupError):
                self.kill(component, signal.SIGTERM)

    def check_alive(self) -> None:
        dead = {c: p.returncode for c, p in self.processes.items() if p.poll() is not None}
        if dead:
            tails = {c: (self.logs / f"{c}.log").read_text()[-3000:] for c in dead}
            raise AssertionError(f"Airflow components died: {dead}\n{tails}")

    # -- what the metadata database says -------------------------------------------------------

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 180) -> None:
        def serialized() -> bool:
            self.check_alive()
            rows = self.postgres.query("select dag_id from serialized_dag")
            return set(dag_ids) <= {r[0] for r in rows}

        wait_for(serialized, timeout, f"DAGs {dag_ids} serialized by the dag-processor", interval=1)

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> str:
        run_id = f"test__{dag_id}__{secrets.token_hex(4)}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps(conf)]
        if logical_date is not None:
            args += ["--logical-date", logical_date]
        self.airflow(*args)
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.postgres.query("select state from dag_run where dag_id=%s and run_id=%s", dag_id, run_id)
        return rows[0][0] if rows else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        def finished() -> str | None:
            self.check_alive()
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return str(wait_for(finished, timeout, f"run {run_id} finished", interval=0.5))

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        cols = ("state", "try_number", "pid", "trigger_id", "start_date", "end_date", "next_method")
        rows = self.postgres.query(
            f"select {', '.join(cols)} from task_instance where dag_id=%s and run_id=%s and task_id=%s",
            dag_id,
            run_id,
            task_id,
        )
        return dict(zip(cols, rows[0], strict=True)) if rows else {}

    def logs_of(self, component: str) -> str:
        return (self.logs / f"{component}.log").read_text(errors="replace")


def make_base() -> Path:
    """A temporary folder PostgreSQL's own user can reach (mkdtemp's are private to root)."""
    base = Path(tempfile.mkdtemp(prefix="kubeai-speech-deployment-"))
    base.chmod(0o755)
    return base
