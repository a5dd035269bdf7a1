"""The real kubectl against the sandbox, out of the box (issue #18, point 10).

kubectl comes from Debian's kubernetes-client package (``.ci/run`` installs it when missing); on
a machine without it these tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.integration.conftest import model_manifest

if TYPE_CHECKING:
    from pathlib import Path

    from local_kubeai import Sandbox

KUBECTL = shutil.which("kubectl")


def _client_minor() -> int:
    if KUBECTL is None:
        return 0
    out = subprocess.run(
        [KUBECTL, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30
    )
    try:
        return int("".join(c for c in json.loads(out.stdout)["clientVersion"]["minor"] if c.isdigit()))
    except (ValueError, KeyError):
        return 0


MINOR = _client_minor()
pytestmark = [
    pytest.mark.skipif(
        KUBECTL is None, reason="kubectl is not installed (Debian: apt-get install kubernetes-client)"
    ),
    # before 1.27 kubectl validates with /openapi/v2 as protobuf, which the sandbox serves as JSON only
    pytest.mark.skipif(
        0 < MINOR < 27, reason=f"kubectl 1.{MINOR} is older than 1.27 (no /openapi/v3 validation)"
    ),
]


def kubectl(
    sandbox: Sandbox, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig_path), "HOME": str(sandbox.state_dir)}
    done = subprocess.run(
        [KUBECTL or "kubectl", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


def manifest_file(tmp_path: Path, name: str, **params: Any) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(model_manifest(name, **params)))
    return str(path)


def test_kubectl_get_apply_patch_scale_wait_delete(make_kubeai_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.2)
    assert "No resources found in kubeai namespace." in kubectl(sandbox, "get", "models").stderr

    # client-side apply, with kubectl's default --validate=strict (it reads /openapi/v3)
    manifest = manifest_file(tmp_path, "kc", replicas=1)
    assert kubectl(sandbox, "apply", "-f", manifest).stdout.strip() == "model.kubeai.org/kc created"
    listed = kubectl(sandbox, "get", "models").stdout.splitlines()
    assert listed[0].split() == ["NAME", "AGE"] and listed[1].split()[0] == "kc"
    assert kubectl(sandbox, "apply", "-f", manifest_file(tmp_path, "kc", replicas=2)).stdout.strip() == (
        "model.kubeai.org/kc configured"
    )
    assert sandbox.store.get("kubeai", "kc")["spec"]["replicas"] == 2

    # server-side apply, and a typo the server refuses (validation strict, as kubectl asks)
    ssa = kubectl(sandbox, "apply", "--server-side", "--field-manager=kctest", "-f", manifest)
    assert ssa.stdout.strip() == "model.kubeai.org/kc serverside-applied"
    typo = model_manifest("typo")
    typo["spec"]["min_replicas"] = 1
    refused = kubectl(sandbox, "apply", "-f", "-", stdin=yaml.safe_dump(typo), check=False)
    assert refused.returncode != 0 and 'unknown field "spec.min_replicas"' in refused.stderr

    kubectl(
        sandbox, "patch", "model", "kc", "--type", "merge", "-p", json.dumps({"spec": {"minReplicas": 1}})
    )
    assert sandbox.store.get("kubeai", "kc")["spec"]["minReplicas"] == 1
    strategic = kubectl(sandbox, "patch", "model", "kc", "-p", '{"spec":{"minReplicas":0}}', check=False)
    assert (
        strategic.returncode != 0
        and "application/strategic-merge-patch+json is not supported" in strategic.stderr
    )

    assert (
        kubectl(sandbox, "scale", "model", "kc", "--replicas=3").stdout.strip()
        == "model.kubeai.org/kc scaled"
    )
    waited = kubectl(
        sandbox, "wait", "--for=jsonpath={.status.replicas.ready}=3", "model/kc", "--timeout=30s"
    )
    assert waited.stdout.strip() == "model.kubeai.org/kc condition met"
    got = json.loads(kubectl(sandbox, "get", "model", "kc", "-o", "json").stdout)
    assert got["status"]["replicas"]["ready"] == 3

    assert kubectl(sandbox, "delete", "model", "kc").stdout.strip() == 'model.kubeai.org "kc" deleted'
    assert sandbox.store.find("kubeai", "kc") is None


def test_kubectl_version_and_cluster_wide_reads(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(cluster_admin=True, startup_delay=60)
    version = json.loads(kubectl(sandbox, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.36.")
    assert kubectl(sandbox, "get", "namespaces", "-o", "name").stdout.split() == ["namespace/kubeai"]
    sandbox.store.create("kubeai", model_manifest("everywhere"), "test")
    assert kubectl(sandbox, "get", "models", "-A", "-o", "name").stdout.split() == [
        "model.kubeai.org/everywhere"
    ]
