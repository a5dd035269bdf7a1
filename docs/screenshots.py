"""A screenshot of Airflow's real UI for the docs: the grid view of a DAG's runs
(docs/_static/grid.png), taken by headless Chromium against
``airflow api-server`` on an existing AIRFLOW_HOME (e.g. the quickstart walkthrough's, after its
``airflow dags test`` runs)::

    python docs/screenshots.py --airflow-home first-hour/airflow-home --dag-id my_calls

Needs ``/usr/bin/chromium`` (Debian's ``chromium`` package). ``ApiServer`` is also used by
tests/integration/test_connection_form.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parent / "_static"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    """``airflow api-server`` on a free loopback port, every user an admin (no login page).

    :param airflow_home: the AIRFLOW_HOME to serve (its airflow.db).
    :param log: where its output goes.
    """

    def __init__(self, airflow_home: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(airflow_home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__WORKERS": "1",
            }
        )
        airflow = str(Path(sys.executable).with_name("airflow"))
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [airflow, "api-server", "--port", str(self.port), "--host", "127.0.0.1"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as answer:
            return json.loads(answer.read())

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow api-server exited with {self.process.returncode}")
            with contextlib.suppress(OSError):
                self.get("/api/v2/monitor/health")
                return
            time.sleep(1)
        raise TimeoutError("airflow api-server did not answer")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self) -> ApiServer:
        self.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def screenshot(url: str, target: Path, size: str = "1280,800") -> Path:
    """A headless Chromium screenshot of ``url`` (JavaScript given 20 s of virtual time)."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
             "--virtual-time-budget=20000", f"--screenshot={target}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--airflow-home", type=Path, required=True)
    parser.add_argument("--dag-id", default="my_calls")
    parser.add_argument("--out", type=Path, default=STATIC)
    args = parser.parse_args()
    with ApiServer(args.airflow_home.resolve(), args.out / ".api-server.log") as server:
        runs = server.get(f"/api/v2/dags/{args.dag_id}/dagRuns")["dag_runs"]
        if not runs:
            raise SystemExit(f"{args.dag_id} has no runs in {args.airflow_home}: run the walkthrough first")
        print(screenshot(f"{server.url}/dags/{args.dag_id}/runs", args.out / "grid.png"))
    (args.out / ".api-server.log").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
