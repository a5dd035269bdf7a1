"""The documentation covers every parameter of the seed page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "kubeai-speech-serve.txt"

SEED_PARAMETERS = {
    "project", "name", "kind", "uuid", "description", "labels", "embedded", "model_name", "image", "url", "adapters",
    "action", "node_selector", "volumes", "resources", "affinity", "tolerations", "envs", "secrets", "profile",
    "replicas", "service_type", "service_name", "env", "args", "cache_profile", "files", "scaling", "processors",
    "scaling.replicas", "scaling.min_replicas", "scaling.max_replicas", "scaling.autoscaling_disabled",
    "scaling.target_request", "scaling.scale_down_delay_seconds", "scaling.load_balancing.strategy",
}  # fmt: skip


def test_every_seed_parameter_is_in_the_table() -> None:
    table = (ROOT / "docs" / "parameters.rst").read_text()
    documented = set(re.findall(r"``([a-z_.]+)(?:\.\*)?``", table))
    missing = {
        p for p in SEED_PARAMETERS if p not in documented and not any(d.startswith(p) for d in documented)
    }
    assert not missing


def test_the_list_matches_the_seed_page() -> None:
    if not SEED.exists():
        pytest.skip("../shared is not beside the checkout")
    text = SEED.read_text()
    rows = set(re.findall(r"^([a-z_]+) (?:str|list|dict|bool|int|Scaling)", text, flags=re.MULTILINE))
    rows -= {"method"}  # invoke()'s own arguments: see KubeAISpeechHook.invoke
    assert rows and rows <= {p for p in SEED_PARAMETERS if "." not in p}
