"""The provider needs no more than the Role in docs/operators.rst: the sandbox binds its token to
exactly those verbs (a 403 for anything else) and the example DAGs still run end to end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pendulum
import pytest

from local_kubeai.config import PROVIDER_ROLE
from tests.integration.conftest import GROUP, PLURAL, VERSION, model_manifest

SAMPLES = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio"
NS = "kubeai"


def test_the_documented_role_is_the_one_the_sandbox_enforces() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operators.rst").read_text()
    assert "resources: [models]" in docs
    verbs = ", ".join(f'"{v}"' for v in PROVIDER_ROLE["models"])
    assert f"verbs: [{verbs}]" in docs
    assert set(PROVIDER_ROLE) == {"models"}


def test_every_step_works_with_the_least_privileged_identity(
    make_kubeai_sandbox: Any, run_dag: Any, tmp_path: Path
) -> None:
    from kubernetes import client, config
    from kubernetes.client import ApiException

    sandbox = make_kubeai_sandbox(startup_delay=0.2, cache_load_delay=0.2, role=PROVIDER_ROLE)
    api = client.CustomObjectsApi(config.new_client_from_config(str(sandbox.kubeconfig_path)))

    day = pendulum.datetime(2026, 11, 24, tz="UTC")
    shutil.copytree(SAMPLES, tmp_path / "calls" / "2026-11-24", ignore=shutil.ignore_patterns("*.txt"))
    batch = run_dag(
        "kubeai_batch_transcription",
        logical_date=day,
        input_root=str(tmp_path / "calls"),
        output_root=str(tmp_path / "out"),
    )
    assert batch.state == "success", batch.tis
    assert run_dag("kubeai_seed_parameters", sample=str(SAMPLES / "meeting-001.wav")).state == "success"
    assert run_dag("test_serve_deferrable").state == "success"  # deferrable wait, warm-up
    assert run_dag("test_sensor_poke").state == "success"
    assert run_dag("test_teardown").state == "success"  # scale, then delete

    # ...and the identity really is that narrow: what the Role leaves out is refused.
    sandbox.store.create(NS, model_manifest("other", replicas=0), "admin")
    with pytest.raises(ApiException) as err:
        api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "other")
    assert err.value.status == 403
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, NS, PLURAL, "other", {"status": {"replicas": {"all": 9}}}
        )
    assert err.value.status == 403 and "subresource 'status'" in str(err.value.body)
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_custom_object_scale(
            GROUP, VERSION, NS, PLURAL, "other", {"spec": {"replicas": 1}}
        )
    assert err.value.status == 403
