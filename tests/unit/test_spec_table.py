"""The spec table: every seed parameter, every CRD rule, every DigitalHub defect, with asserted messages."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_kubeai_speech.spec import (
    SpeechModelSpec,
    SpeechModelSpecError,
    build_speech_model_spec,
    check_update,
)
from local_kubeai.crd import model_crd

BASE: dict[str, Any] = {"model_name": "whisper-tiny", "url": "hf://openai/whisper-tiny"}


def spec_of(**params: Any) -> dict[str, Any]:
    """Build with BASE + params and return the rendered Model's spec (and check it against the CRD)."""
    manifest = build_speech_model_spec({**BASE, **params}).to_manifest("kubeai")
    defaulted = model_crd().apply_defaults(manifest)
    assert model_crd().validate(defaulted) == []
    return manifest["spec"]


ACCEPTED = [
    pytest.param(
        {},
        {
            "url": "hf://openai/whisper-tiny",
            "engine": "FasterWhisper",
            "features": ["SpeechToText"],
            "resourceProfile": "cpu:1",
            "minReplicas": 0,
        },
        id="minimal",
    ),
    pytest.param({"image": "ghcr.io/x/fw:1"}, {"image": "ghcr.io/x/fw:1"}, id="image"),
    pytest.param({"env": {"A": "1"}}, {"env": {"A": "1"}}, id="env-dict"),
    pytest.param({"envs": [{"name": "B", "value": "2"}]}, {"env": {"B": "2"}}, id="envs-list"),
    pytest.param(
        {"env": {"A": "1"}, "envs": [{"name": "B", "value": "2"}]},
        {"env": {"A": "1", "B": "2"}},
        id="env-and-envs-merge",
    ),
    pytest.param({"env": {"N": 3, "F": 1.5}}, {"env": {"N": "3", "F": "1.5"}}, id="env-numbers-as-strings"),
    pytest.param({"args": ["--beam-size", "5"]}, {"args": ["--beam-size", "5"]}, id="args"),
    pytest.param(
        {"files": [{"path": "/config/a.yaml", "content": "x: 1"}]},
        {"files": [{"path": "/config/a.yaml", "content": "x: 1"}]},
        id="files",
    ),
    pytest.param({"cache_profile": "standard"}, {"cacheProfile": "standard"}, id="cache-profile"),
    pytest.param(
        {"profile": "nvidia-gpu-l4", "processors": 2},
        {"resourceProfile": "nvidia-gpu-l4:2"},
        id="profile-processors",
    ),
    pytest.param({"processors": "3"}, {"resourceProfile": "cpu:3"}, id="templated-int-string"),
    pytest.param({"replicas": 2}, {"replicas": 2}, id="replicas-task"),
    pytest.param({"scaling": {"replicas": 2}}, {"replicas": 2}, id="replicas-scaling"),
    pytest.param({"replicas": 2, "scaling": {"replicas": 2}}, {"replicas": 2}, id="replicas-both-agree"),
    pytest.param(
        {"scaling": {"min_replicas": 1, "max_replicas": 3}},
        {"minReplicas": 1, "maxReplicas": 3},
        id="min-max",
    ),
    pytest.param(
        {"scaling": {"max_replicas": 3}}, {"minReplicas": 0, "maxReplicas": 3}, id="max-only-sends-min"
    ),
    pytest.param(
        {"scaling": {"autoscaling_disabled": True}}, {"autoscalingDisabled": True}, id="autoscaling-disabled"
    ),
    # DigitalHub defect: target_request (the seed's spelling) was silently ignored.
    pytest.param({"scaling": {"target_request": 7}}, {"targetRequests": 7}, id="seed-target_request"),
    pytest.param({"scaling": {"target_requests": 7}}, {"targetRequests": 7}, id="target_requests"),
    pytest.param(
        {"scaling": {"scale_down_delay_seconds": 0}}, {"scaleDownDelaySeconds": 0}, id="scale-down-delay"
    ),
    # DigitalHub defect: loadBalancing sent in snake_case, pruned by the API server.
    pytest.param(
        {
            "scaling": {
                "load_balancing": {
                    "strategy": "PrefixHash",
                    "prefix_hash": {"mean_load_factor": 150, "replication": 64, "prefix_char_length": 50},
                }
            }
        },
        {
            "loadBalancing": {
                "strategy": "PrefixHash",
                "prefixHash": {"meanLoadFactor": 150, "replication": 64, "prefixCharLength": 50},
            }
        },
        id="load-balancing-camel-case",
    ),
    pytest.param(
        {"secrets": ["hf-token", "s3.creds"]},
        {"envFrom": [{"secretRef": {"name": "hf-token"}}, {"secretRef": {"name": "s3.creds"}}]},
        id="secrets-envfrom",
    ),
    pytest.param({"url": "s3://bucket/models/whisper"}, {"url": "s3://bucket/models/whisper"}, id="s3-url"),
    pytest.param({"url": "pvc://models/whisper"}, {"url": "pvc://models/whisper"}, id="pvc-url"),
    pytest.param(
        {"url": "gs://bucket/w", "cache_profile": "std"},
        {"url": "gs://bucket/w", "cacheProfile": "std"},
        id="gs-with-cache",
    ),
    pytest.param(
        {"url": "oss://bucket/w", "cache_profile": "std"}, {"url": "oss://bucket/w"}, id="oss-with-cache"
    ),
    pytest.param({"adapters": []}, {}, id="empty-adapters-ok"),
    pytest.param({"node_selector": None, "volumes": [], "resources": {}}, {}, id="unsupported-but-empty-ok"),
    pytest.param({"kind": "kubeai-speech", "action": "serve"}, {}, id="seed-kind-action"),
    pytest.param(
        {"priority_class_name": "batch-low"}, {"priorityClassName": "batch-low"}, id="priority-class"
    ),
]


@pytest.mark.parametrize(("params", "expected"), ACCEPTED)
def test_accepted_parameters_map_to_kubeai(params: dict[str, Any], expected: dict[str, Any]) -> None:
    spec = spec_of(**params)
    for key, value in expected.items():
        assert spec[key] == value
    assert not any("_" in key for key in spec), "KubeAI fields are camelCase"


def test_labels_description_and_name_fallback() -> None:
    spec = build_speech_model_spec(
        {
            "name": "fn-name",
            "url": BASE["url"],
            "labels": ["team=asr", "nightly"],
            "description": "nightly {run}",
        }
    )
    manifest = spec.to_manifest("kubeai", extra_labels={"airflow-dag-id": "d"})
    assert manifest["metadata"]["name"] == "fn-name"
    assert manifest["metadata"]["labels"] == {"team": "asr", "nightly": "true", "airflow-dag-id": "d"}
    assert (
        manifest["metadata"]["annotations"]["kubeai-speech.airflow.apache.org/description"] == "nightly {run}"
    )
    assert (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"]) == (
        "kubeai.org/v1",
        "Model",
        "kubeai",
    )


def test_seed_quick_example_is_refused_for_its_adapters() -> None:
    # The seed's own quick example: url + adapters. KubeAI refuses adapters on FasterWhisper.
    with pytest.raises(SpeechModelSpecError, match=r"adapters are not supported .* VLLM engine") as err:
        build_speech_model_spec(
            {
                "name": "my-kubeai-speech-service",
                "kind": "kubeai-speech",
                "url": "hf://openai/whisper-tiny",
                "adapters": [{"name": "whisper-adapter", "url": "hf://adapter-url"}],
                "action": "serve",
                "replicas": 1,
            }
        )
    assert "Fix:" in str(err.value)
    # ... and without adapters it is served as asked.
    spec = build_speech_model_spec(
        {
            "name": "my-kubeai-speech-service",
            "kind": "kubeai-speech",
            "url": "hf://openai/whisper-tiny",
            "replicas": 1,
        }
    )
    assert spec.to_manifest("kubeai")["spec"]["replicas"] == 1


REFUSED = [
    pytest.param({"model_name": "Whisper_Tiny"}, "model_name", "not a valid Model name", id="name-not-dns"),
    pytest.param({"model_name": "w" * 41}, "model_name", "at most 40", id="name-too-long"),
    pytest.param({"model_name": "-w"}, "model_name", "DNS-1123", id="name-leading-dash"),
    pytest.param({"model_name": None, "name": None}, "model_name", "", id="name-missing"),
    # DigitalHub defect: the seed's regex ^s3?:// accepted 's://'.
    pytest.param({"url": "s://bucket/x"}, "url", "unsupported scheme", id="url-s-scheme"),
    pytest.param({"url": "h://openai/whisper"}, "url", "unsupported scheme", id="url-h-scheme"),
    pytest.param({"url": "pv://x"}, "url", "unsupported scheme", id="url-pv-scheme"),
    pytest.param({"url": "ftp://x/y"}, "url", "unsupported scheme", id="url-ftp"),
    pytest.param({"url": "hf://"}, "url", "names no model", id="url-empty-path"),
    pytest.param({"url": "hf://whisper"}, "url", "hf://<owner>/<repo>", id="url-hf-no-owner"),
    pytest.param({"url": " hf://openai/whisper-tiny"}, "url", "surrounding spaces", id="url-spaces"),
    pytest.param(
        {"url": "store://proj/model/huggingface/whisper:abc"},
        "url",
        "DigitalHub's artifact store",
        id="url-seed-store",
    ),
    pytest.param({"url": "ollama://whisper"}, "url", "Ollama model", id="url-ollama"),
    pytest.param({"url": "gs://bucket/w"}, "url", "needs a cache_profile", id="gs-needs-cache"),
    pytest.param({"url": "oss://bucket/w"}, "url", "needs a cache_profile", id="oss-needs-cache"),
    pytest.param(
        {"url": "pvc://models/w", "cache_profile": "std"},
        "cache_profile",
        "only with hf://",
        id="cache-with-pvc",
    ),
    pytest.param({"cache_profile": ""}, "cache_profile", "is empty", id="cache-empty"),
    pytest.param({"adapters": [{"name": "a", "url": "hf://x/y"}]}, "adapters", "VLLM", id="adapters"),
    pytest.param(
        {"node_selector": [{"key": "gpu", "value": "l4"}]},
        "node_selector",
        "resourceProfiles",
        id="node-selector",
    ),
    pytest.param({"volumes": [{"name": "v"}]}, "volumes", "cannot mount volumes", id="volumes"),
    pytest.param({"resources": {"limits": {"cpu": "2"}}}, "resources", "processors", id="resources"),
    pytest.param({"affinity": {"nodeAffinity": {}}}, "affinity", "resourceProfiles", id="affinity"),
    pytest.param({"tolerations": [{"key": "gpu"}]}, "tolerations", "resourceProfiles", id="tolerations"),
    pytest.param({"service_type": "NodePort"}, "service_type", "'kubeai' Service", id="service-type"),
    pytest.param({"service_name": "svc"}, "service_name", "no Service per Model", id="service-name"),
    pytest.param({"uuid": "0b5e..."}, "uuid", "DigitalHub object id", id="uuid"),
    pytest.param({"embedded": True}, "embedded", "no KubeAI meaning", id="embedded"),
    pytest.param({"project": "p"}, "project", "namespace", id="project"),
    pytest.param({"kind": "kubeai-text"}, "kind", "kubeai-speech", id="kind-other"),
    pytest.param({"action": "build"}, "action", "serve", id="action-other"),
    pytest.param({"profile": "cpu:2"}, "profile", "processors=2", id="profile-with-count"),
    pytest.param({"processors": 0}, "processors", "between 1 and", id="processors-zero"),
    pytest.param({"processors": 1.5}, "processors", "integer", id="processors-fraction"),
    pytest.param({"replicas": -1}, "replicas", "between 0 and", id="replicas-negative"),
    pytest.param({"replicas": True}, "replicas", "boolean", id="replicas-bool"),
    pytest.param({"replicas": 1, "scaling": {"replicas": 2}}, "replicas", "disagree", id="replicas-conflict"),
    pytest.param(
        {"scaling": {"min_replicas": 3, "max_replicas": 2}},
        "scaling",
        "min_replicas=3 is above max_replicas=2",
        id="min-above-max",
    ),
    pytest.param({"scaling": {"max_replicas": 0}}, "scaling.max_replicas", "between 1 and", id="max-zero"),
    pytest.param(
        {"scaling": {"min_replicas": -1}}, "scaling.min_replicas", "between 0 and", id="min-negative"
    ),
    pytest.param(
        {"scaling": {"target_requests": 0}}, "scaling.target_requests", "targetRequests", id="target-zero"
    ),
    pytest.param(
        {"scaling": {"target_request": 5, "target_requests": 6}},
        "scaling",
        "disagree",
        id="target-both-spellings",
    ),
    pytest.param(
        {"scaling": {"scale_down_delay_seconds": -5}},
        "scaling.scale_down_delay_seconds",
        "between 0",
        id="delay-negative",
    ),
    pytest.param(
        {"scaling": {"replicas": 2**31}}, "scaling.replicas", "between 0 and 2147483647", id="int32-overflow"
    ),
    pytest.param(
        {"scaling": {"load_balancing": {"strategy": "RoundRobin"}}},
        "scaling.load_balancing.strategy",
        "LeastLoad",
        id="lb-strategy",
    ),
    pytest.param(
        {"scaling": {"load_balancing": {"prefix_hash": {"mean_load_factor": 99}}}},
        "mean_load_factor",
        "meanLoadFactor",
        id="mean-load-factor",
    ),
    pytest.param(
        {"scaling": {"loadBalancing": {}}}, "scaling", "did you mean 'load_balancing'", id="camel-case-typo"
    ),
    pytest.param(
        {"scaling": {"target_requets": 3}}, "scaling", "did you mean 'target_requests'", id="typo-suggestion"
    ),
    pytest.param({"replica": 3}, "", "did you mean 'replicas'", id="top-level-typo"),
    pytest.param(
        {"files": [{"path": "config.yaml", "content": ""}]}, "files.0", "absolute path", id="file-relative"
    ),
    pytest.param({"files": [{"path": "/c:/x", "content": ""}]}, "files.0", "without ':'", id="file-colon"),
    pytest.param(
        {"files": [{"path": "/a", "content": "1"}, {"path": "/a", "content": "2"}]},
        "",
        "appears twice",
        id="file-duplicate",
    ),
    pytest.param(
        {"files": [{"path": f"/f{i}", "content": ""} for i in range(11)]},
        "",
        "at most 10",
        id="files-too-many",
    ),
    pytest.param(
        {"files": [{"path": "/big", "content": "x" * 100_001}]},
        "files.0",
        "at most 100000",
        id="file-too-big",
    ),
    pytest.param(
        {"files": [{"path": "/" + "p" * 1024, "content": ""}]}, "files.0", "at most 1024", id="file-path-long"
    ),
    pytest.param({"secrets": ["Bad_Secret"]}, "", "not a valid Kubernetes Secret name", id="secret-name"),
    pytest.param(
        {"envs": [{"name": "A", "value_from": {"secretKeyRef": {}}}]},
        "envs.0",
        "valueFrom",
        id="envs-value-from",
    ),
    pytest.param(
        {"env": {"A": "1"}, "envs": [{"name": "A", "value": "2"}]}, "", "set twice", id="env-conflict"
    ),
    pytest.param({"env": {"A=B": "1"}}, "env", "without '='", id="env-bad-name"),
    pytest.param({"env": {"DEBUG": True}}, "env.DEBUG", "boolean", id="env-bool"),
    pytest.param({"labels": {"bad key!": "x"}}, "labels", "label key", id="label-key"),
    pytest.param(
        {"labels": ["run=manual__2026-11-25T00:00:00+00:00"]}, "labels", "label value", id="label-value"
    ),
]


@pytest.mark.parametrize(("params", "field", "message"), REFUSED)
def test_refused_parameters_name_field_value_and_fix(
    params: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpeechModelSpecError) as err:
        build_speech_model_spec({**BASE, **params})
    text = str(err.value)
    assert message in text
    problem_field, problem = err.value.problems[0]
    if field:
        assert field in problem_field or problem.startswith(field) or field in problem
    assert "Fix" in problem or problem_field == "model_name"


def test_table_is_large_enough() -> None:
    assert len(ACCEPTED) + len(REFUSED) >= 40


def test_model_validate_raises_pydantic_error_with_the_same_message() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unsupported scheme"):
        SpeechModelSpec.model_validate({**BASE, "url": "s://x"})


def test_every_refused_value_is_shown() -> None:
    with pytest.raises(SpeechModelSpecError, match="'s://bucket/x'"):
        build_speech_model_spec({**BASE, "url": "s://bucket/x"})


def test_to_manifest_checks_namespace_and_extra_labels() -> None:
    spec = build_speech_model_spec(BASE)
    with pytest.raises(SpeechModelSpecError, match="namespace"):
        spec.to_manifest("Bad_NS")
    with pytest.raises(SpeechModelSpecError, match="label value"):
        spec.to_manifest("kubeai", extra_labels={"run": "a:b"})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            {"url": "hf://a/b", "cacheProfile": "c"},
            {"url": "hf://a/b", "cacheProfile": "d"},
            "cacheProfile is immutable",
        ),
        (
            {"url": "hf://a/b", "cacheProfile": "c"},
            {"url": "hf://a/c", "cacheProfile": "c"},
            "url is immutable",
        ),
        (
            {"url": "hf://a/b", "loadBalancing": {"prefixHash": {"replication": 256}}},
            {"url": "hf://a/b", "loadBalancing": {"prefixHash": {"replication": 64}}},
            "replication is immutable",
        ),
    ],
)
def test_update_transition_rules(old: dict[str, Any], new: dict[str, Any], message: str) -> None:
    with pytest.raises(SpeechModelSpecError, match=message) as err:
        check_update(old, new)
    assert "DeleteSpeechModelOperator" in str(err.value)
    # The CRD's own transition rules agree.
    base = {
        "engine": "FasterWhisper",
        "features": ["SpeechToText"],
        "targetRequests": 1,
        "scaleDownDelaySeconds": 1,
    }
    causes = model_crd().validate(
        {"metadata": {"name": "m"}, "spec": {**base, **new}},
        {"metadata": {"name": "m"}, "spec": {**base, **old}},
    )
    assert causes


def test_update_without_immutable_change_is_allowed() -> None:
    # Removing the cacheProfile is allowed by the API server (transition rules skip absent values).
    check_update({"url": "hf://a/b", "cacheProfile": "c"}, {"url": "hf://a/b"})
    check_update(
        {"url": "hf://a/b", "cacheProfile": "c", "replicas": 1},
        {"url": "hf://a/b", "cacheProfile": "c", "replicas": 3},
    )
