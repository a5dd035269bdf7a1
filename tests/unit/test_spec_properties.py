"""Property-based: the spec model and KubeAI's CRD agree, both ways.

1. Every parameter set the model accepts renders a manifest the CRD (schema + CEL) accepts.
2. Every parameter set whose plain KubeAI translation the CRD refuses is refused by the model.

The "plain translation" below maps seed names to KubeAI fields with no checks at all (minReplicas
always sent, as KubeAI's own Go client does), so the CRD alone decides.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_kubeai_speech.spec import SpeechModelSpecError, build_speech_model_spec
from local_kubeai.crd import model_crd

names = st.one_of(
    st.sampled_from(["whisper", "w", "fw-small-en", "a" * 40, "a" * 41, "Bad", "-x", "x-", "ok-9"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,45}[a-z0-9]", fullmatch=True),
)
urls = st.one_of(
    st.sampled_from(
        [
            "hf://openai/whisper-tiny",
            "s3://b/m",
            "pvc://vol/m",
            "gs://b/m",
            "oss://b/m",
            "ollama://m",
            "ftp://x",
            "s://x",
            "",
            "hf://",
            "http://x",
            "store://p/model/huggingface/x",
        ]
    ),
    st.builds(
        lambda s, p: s + p,
        st.sampled_from(["hf://", "s3://", "pvc://", "gs://"]),
        st.from_regex(r"[a-z]{1,5}/[a-z]{1,5}", fullmatch=True),
    ),
)
small_ints = st.one_of(st.none(), st.integers(min_value=-3, max_value=300))
paths = st.sampled_from(["/a", "/b", "/etc/c.yaml", "rel", "/x:y", "/a"])
files = st.one_of(
    st.none(), st.lists(st.fixed_dictionaries({"path": paths, "content": st.text(max_size=5)}), max_size=12)
)
prefix_hash = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "mean_load_factor": st.integers(90, 200),
            "replication": st.integers(1, 300),
            "prefix_char_length": st.integers(1, 200),
        },
    ),
)
load_balancing = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {}, optional={"strategy": st.sampled_from(["LeastLoad", "PrefixHash"]), "prefix_hash": prefix_hash}
    ),
)
scaling = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "replicas": small_ints,
            "min_replicas": small_ints,
            "max_replicas": small_ints,
            "autoscaling_disabled": st.booleans(),
            "target_request": small_ints,
            "scale_down_delay_seconds": small_ints,
            "load_balancing": load_balancing,
        },
    ),
)
params_strategy = st.fixed_dictionaries(
    {"model_name": names, "url": urls},
    optional={
        "cache_profile": st.sampled_from(["std", "fast"]),
        "processors": st.integers(1, 8),
        "replicas": st.integers(0, 5),
        "scaling": scaling,
        "files": files,
        "adapters": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["a", "b"]), "url": st.sampled_from(["hf://x/y", "x"])}
            ),
            max_size=2,
        ),
        "env": st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["1", "x"]), max_size=2),
        "args": st.lists(st.sampled_from(["--x", "1"]), max_size=2),
        "secrets": st.lists(st.sampled_from(["s1", "creds.prod"]), max_size=2),
    },
)


def plain_translation(params: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": params["url"], "engine": "FasterWhisper", "features": ["SpeechToText"]}
    renames = {
        "cache_profile": "cacheProfile",
        "args": "args",
        "env": "env",
        "files": "files",
        "adapters": "adapters",
    }
    for seed, kubeai in renames.items():
        if params.get(seed) not in (None, [], {}):  # omitempty, as KubeAI's Go client sends them
            spec[kubeai] = params[seed]
    scaling = dict(params.get("scaling") or {})
    if params.get("replicas") is not None:
        spec["replicas"] = params["replicas"]
    renames = {
        "replicas": "replicas",
        "max_replicas": "maxReplicas",
        "autoscaling_disabled": "autoscalingDisabled",
        "target_request": "targetRequests",
        "scale_down_delay_seconds": "scaleDownDelaySeconds",
    }
    for seed, kubeai in renames.items():
        if scaling.get(seed) is not None:
            spec[kubeai] = scaling[seed]
    spec["minReplicas"] = scaling.get("min_replicas") or 0
    if scaling.get("load_balancing") is not None:
        lb = scaling["load_balancing"]
        spec["loadBalancing"] = {k: v for k, v in {"strategy": lb.get("strategy")}.items() if v is not None}
        if lb.get("prefix_hash") is not None:
            ph = lb["prefix_hash"]
            spec["loadBalancing"]["prefixHash"] = {
                {
                    "mean_load_factor": "meanLoadFactor",
                    "replication": "replication",
                    "prefix_char_length": "prefixCharLength",
                }[k]: v
                for k, v in ph.items()
            }
    if params.get("secrets"):
        spec["envFrom"] = [{"secretRef": {"name": s}} for s in params["secrets"]]
    manifest = {
        "apiVersion": "kubeai.org/v1",
        "kind": "Model",
        "metadata": {"name": params["model_name"], "namespace": "kubeai"},
        "spec": spec,
    }
    return model_crd().apply_defaults(manifest)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params_strategy)
def test_model_and_crd_agree(params: dict[str, Any]) -> None:
    crd = model_crd()
    crd_causes = crd.validate(plain_translation(params))
    try:
        spec = build_speech_model_spec(params)
    except SpeechModelSpecError:
        return  # refused: fine whatever the CRD says (the model may be stricter, never looser)
    # Direction 2: the model never accepts what the CRD refuses.
    assert crd_causes == [], f"model accepted {params} but the CRD refuses: {crd_causes}"
    # Direction 1: what the model renders is accepted by the CRD.
    manifest = crd.apply_defaults(spec.to_manifest("kubeai"))
    assert crd.validate(manifest) == []
    assert crd.prune(manifest) == [], "nothing the model renders may be pruned by the API server"


@settings(max_examples=200, deadline=None)
@given(params_strategy)
def test_model_refuses_everything_the_crd_refuses(params: dict[str, Any]) -> None:
    # The same property seen from the CRD side, so a counterexample is reported as such.
    if model_crd().validate(plain_translation(params)):
        try:
            build_speech_model_spec(params)
        except SpeechModelSpecError:
            return
        raise AssertionError(f"CRD refuses but the model accepts: {params}")
