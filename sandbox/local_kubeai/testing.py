"""pytest fixtures for DAG authors and for this project's own tests.

Load with ``pytest_plugins = ["local_kubeai.testing"]``:

- ``kubeai_sandbox``: a running in-process sandbox (fake engine), its connections set as
  ``AIRFLOW_CONN_*`` environment variables for the test.
- ``make_kubeai_sandbox``: a factory taking :class:`SandboxConfig` fields, for other settings.
- ``SandboxProcess``: the sandbox as a separate process (for tests that kill things).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from local_kubeai.config import SandboxConfig
from local_kubeai.server import Sandbox

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from local_kubeai.faults import Faults


@pytest.fixture
def make_kubeai_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(faults: Faults | None = None, **settings: Any) -> Sandbox:
        sandbox = Sandbox(SandboxConfig(**settings), faults).start()
        started.append(sandbox)
        for key, value in sandbox.airflow_connections().items():
            monkeypatch.setenv(key, value)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def kubeai_sandbox(make_kubeai_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_kubeai_sandbox(startup_delay=0.2)


class SandboxProcess:
    """``python -m local_kubeai`` in a child process.

    :param state_dir: where it writes its kubeconfig and ``sandbox.json``.
    :param args: more command-line options.
    """

    def __init__(self, state_dir: Path, *args: str) -> None:
        self.state_dir = state_dir
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_kubeai",
                "--state-dir",
                str(state_dir),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError(
                f"sandbox did not start: {self.process.stderr.read() if self.process.stderr else ''}"
            )
        self.info: dict[str, Any] = json.loads(line)

    def connections(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for line in Path(self.info["connections_env"]).read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'")
        return env

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (test helper; never used by the provider)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


__all__ = ["SandboxProcess", "kubeai_sandbox", "make_kubeai_sandbox", "wait_until"]
