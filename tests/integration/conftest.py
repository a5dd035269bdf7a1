"""Shared helpers for tests against the sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_kubeai_speech.spec import build_speech_model_spec

if TYPE_CHECKING:
    from local_kubeai import Sandbox

GROUP, VERSION, PLURAL = "kubeai.org", "v1", "models"


def model_manifest(name: str, **params: Any) -> dict[str, Any]:
    return build_speech_model_spec(
        {"model_name": name, "url": "hf://openai/whisper-tiny", **params}
    ).to_manifest("kubeai")


@pytest.fixture
def custom_objects(kubeai_sandbox: Sandbox) -> Any:
    """The official kubernetes client's CustomObjectsApi, configured from the sandbox's kubeconfig."""
    from kubernetes import client, config

    return client.CustomObjectsApi(config.new_client_from_config(str(kubeai_sandbox.kubeconfig_path)))
