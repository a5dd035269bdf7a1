"""The packaged CRD is KubeAI's, byte for byte, and the validator reports what a real API server does."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from local_kubeai.crd import CRD_FILE, model_crd

SHARED = Path(__file__).resolve().parents[3] / "shared" / "kubeai"
PACKAGED = Path(__file__).resolve().parents[2] / "sandbox" / "local_kubeai" / "crd" / CRD_FILE


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is not beside the checkout")
def test_packaged_crd_is_kubeais() -> None:
    assert PACKAGED.read_bytes() == (SHARED / CRD_FILE).read_bytes()


@pytest.mark.skipif(not SHARED.exists(), reason="../shared is not beside the checkout")
def test_kubeais_own_speech_example_is_valid() -> None:
    import yaml

    example = yaml.safe_load((SHARED / "example-model-faster-whisper-medium-en-cpu.yaml").read_text())
    assert model_crd().validate(model_crd().apply_defaults(example)) == []


def test_defaults_match_a_real_api_server() -> None:
    obj = {
        "metadata": {"name": "m"},
        "spec": {
            "url": "hf://a/b",
            "engine": "FasterWhisper",
            "features": ["SpeechToText"],
            "minReplicas": 0,
        },
    }
    spec = model_crd().apply_defaults(obj)["spec"]
    assert spec["targetRequests"] == 100
    assert spec["scaleDownDelaySeconds"] == 30
    assert spec["loadBalancing"] == {
        "strategy": "LeastLoad",
        "prefixHash": {"meanLoadFactor": 125, "replication": 256, "prefixCharLength": 100},
    }


def test_causes_read_like_the_api_servers() -> None:
    obj = {
        "metadata": {"name": "m"},
        "spec": {
            "url": "ftp://x",
            "engine": "FasterWhisper",
            "features": ["SpeechToText"],
            "adapters": [{"name": "a", "url": "hf://x/y"}],
            "minReplicas": 0,
        },
    }
    messages = [str(c) for c in model_crd().validate(model_crd().apply_defaults(obj))]
    assert 'spec.url: Invalid value: "ftp://x": url must start with "hf://"' in "\n".join(messages)
    # v1.36 shows no value for an object (it wrote Invalid value: "object": before v1.35)
    assert "spec: Invalid value: adapters only supported with VLLM engine." in messages


def test_missing_required_and_bad_enum() -> None:
    causes = model_crd().validate({"metadata": {"name": "m"}, "spec": {"engine": "Whisper"}})
    text = "\n".join(map(str, causes))
    assert "spec.url: Required value" in text
    assert 'spec.engine: Unsupported value: "Whisper"' in text


def test_int32_format_is_checked() -> None:
    obj = model_crd().apply_defaults(
        {
            "metadata": {"name": "m"},
            "spec": {
                "url": "hf://a/b",
                "engine": "FasterWhisper",
                "features": [],
                "minReplicas": 0,
                "replicas": 2**31,
            },
        }
    )
    assert any(c.field == "spec.replicas" for c in model_crd().validate(obj))


def test_pruning_drops_unknown_fields_like_snake_case_load_balancing() -> None:
    # DigitalHub's defect: load_balancing in snake_case is silently pruned by the API server.
    obj = {
        "metadata": {"name": "m"},
        "spec": {
            "url": "hf://a/b",
            "load_balancing": {"strategy": "PrefixHash"},
            "loadBalancing": {"prefix_hash": {}},
        },
    }
    dropped = model_crd().prune(copy.deepcopy(obj))
    assert dropped == ["spec.load_balancing", "spec.loadBalancing.prefix_hash"]


def test_name_longer_than_40_is_refused() -> None:
    obj = model_crd().apply_defaults(
        {
            "metadata": {"name": "m" * 41},
            "spec": {"url": "hf://a/b", "engine": "FasterWhisper", "features": [], "minReplicas": 0},
        }
    )
    assert [str(c) for c in model_crd().validate(obj)] == [
        "Invalid value: name must not exceed 40 characters."  # v1.36 shows no value for an object
    ]
