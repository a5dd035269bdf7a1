"""What the sandbox writes into its state dir works from any folder and across restarts (issue #20, 3-4)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from local_kubeai.testing import SandboxProcess

_LIST_MODELS = """
import json, os
from kubernetes import client, config
extra = json.loads(os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"])["extra"]
api = client.CustomObjectsApi(config.new_client_from_config(extra["kube_config_path"]))
print(api.list_namespaced_custom_object("kubeai.org", "v1", extra["namespace"], "models")["kind"])
"""


def test_connections_hold_absolute_paths_and_work_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sandbox = SandboxProcess(Path("state"))  # relative, as `make sandbox` passes .sandbox
    try:
        env = sandbox.connections()
        kube = json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])["extra"]["kube_config_path"]
        assert os.path.isabs(kube) and kube.startswith(str(tmp_path))
        kubeconfig = json.loads(Path(kube).read_text())
        ca = kubeconfig["clusters"][0]["cluster"]["certificate-authority"]
        assert os.path.isabs(ca)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        done = subprocess.run(
            [sys.executable, "-c", _LIST_MODELS],
            cwd=elsewhere,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ModelList"
    finally:
        sandbox.stop()


def test_a_restart_with_the_same_state_dir_keeps_its_ports(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = SandboxProcess(state)
    urls = (first.info["kube_url"], first.info["kubeai_url"])
    first.stop()
    second = SandboxProcess(state)
    try:
        assert (second.info["kube_url"], second.info["kubeai_url"]) == urls
    finally:
        second.stop()

    port = int(urls[0].rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        third = SandboxProcess(state)
        third.stop()
    assert third.info["kube_url"] != urls[0] and third.info["kubeai_url"] == urls[1]
    stderr = third.process.stderr.read() if third.process.stderr else ""
    assert f"kube port {port} of the last run" in stderr and "re-source connections.env" in stderr
