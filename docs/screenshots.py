"""Screenshots of Airflow's real UI for the docs: the grid view of a DAG's runs
(docs/_static/grid.png) and the kubeai_speech connection form
(docs/_static/connection-form.png), taken by headless Chromium against
``airflow api-server`` on an existing AIRFLOW_HOME (e.g. the quickstart walkthrough's, after its
``airflow dags test`` runs)::

    python docs/screenshots.py --airflow-home first-hour/airflow-home --dag-id my_calls

Needs ``/usr/bin/chromium`` (Debian's ``chromium`` package). ``ApiServer`` is also used by
tests/integration/test_connection_form.py.
"""

from __future__ import annotations

import argparse
import base64
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


def connection_form(server: ApiServer, target: Path, hook_name: str = "KubeAI Speech") -> list[str]:
    """Open "Add Connection", pick ``hook_name`` as the type (Chromium driven over the DevTools
    protocol: the form is a dialog), screenshot it; returns the form's labels."""
    import websocket  # websocket-client, a dependency of the kubernetes client

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    chrome = subprocess.Popen(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,960",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as answer:
            page = next(t for t in json.loads(answer.read()) if t["type"] == "page")
        socket_ = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True, timeout=30)
        calls = iter(range(1, 1000))

        def call(method: str, **params: Any) -> Any:
            number = next(calls)
            socket_.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(socket_.recv())
                if message.get("id") == number:
                    return message.get("result", {})

        def script(expression: str) -> Any:
            return call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

        def key(name: str, code: int) -> None:
            for kind in ("keyDown", "keyUp"):
                call("Input.dispatchKeyEvent", type=kind, key=name, code=name, windowsVirtualKeyCode=code)
            time.sleep(0.5)

        call("Page.navigate", url=f"{server.url}/connections")
        time.sleep(6)
        script(
            "[...document.querySelectorAll('button')].find(b => b.textContent.includes('Add Connection')).click()"
        )
        time.sleep(3)
        script("document.querySelectorAll('[role=dialog] input')[1].focus()")  # the connection type
        call("Input.insertText", text=hook_name)
        time.sleep(2)
        key("ArrowDown", 40)
        key("Enter", 13)
        time.sleep(3)
        labels: list[str] = script(
            "[...document.querySelectorAll('[role=dialog] label')].map(l => l.textContent.trim()).filter(Boolean)"
        )
        target.write_bytes(base64.b64decode(call("Page.captureScreenshot", format="png")["data"]))
        socket_.close()
        return labels
    finally:
        chrome.terminate()
        chrome.wait(30)
        shutil.rmtree(profile, ignore_errors=True)


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
        print(connection_form(server, args.out / "connection-form.png"))
    (args.out / ".api-server.log").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
