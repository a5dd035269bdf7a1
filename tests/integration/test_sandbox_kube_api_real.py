"""The sandbox's Kubernetes API answers as a real kube-apiserver v1.36 does (issue #18, points 1-9 and 11).

Raw HTTP, so that status codes, ``Status`` bodies and headers are seen exactly as a client gets them.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from local_kubeai.testing import wait_until
from tests.integration.conftest import model_manifest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local_kubeai import Sandbox

NS = "kubeai"
MODELS = f"/apis/kubeai.org/v1/namespaces/{NS}/models"
SSA = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


class Kube:
    """Requests to a sandbox's Kubernetes API with its token, verified against its CA."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.config.token}"
        self.ca = str(sandbox.ca_path)  # per request: REQUESTS_CA_BUNDLE would win over a session's

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        data = None
        if body is not None:
            data = body if isinstance(body, str) else json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return self.session.request(
            method,
            self.sandbox.kube_url + path,
            data=data,
            headers=headers,
            timeout=10,
            verify=self.ca,
            **kwargs,
        )

    def create(self, name: str, **params: Any) -> dict[str, Any]:
        resp = self("POST", MODELS, model_manifest(name, **params))
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def names(self, **params: Any) -> list[str]:
        resp = self("GET", MODELS, params=params)
        assert resp.status_code == 200, resp.text
        return [i["metadata"]["name"] for i in resp.json()["items"]]

    def watch(self, path: str = MODELS, **params: Any) -> Iterator[dict[str, Any]]:
        resp = self.session.get(
            self.sandbox.kube_url + path,
            params={"watch": "true", "timeoutSeconds": "2", **params},
            stream=True,
            timeout=10,
            verify=self.ca,
        )
        assert resp.status_code == 200, resp.text
        for line in resp.iter_lines():
            if line:
                yield json.loads(line)


@pytest.fixture
def kube(kubeai_sandbox: Sandbox) -> Kube:
    return Kube(kubeai_sandbox)


def status_of(resp: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["code"] == resp.status_code
    return body


# -- 1. unknown fields ---------------------------------------------------------------------


def test_apply_with_an_undeclared_field_is_a_500(kube: Kube) -> None:
    config = model_manifest("ssa-typo")
    config["spec"]["min_replicas"] = 1
    resp = kube(
        "PATCH", f"{MODELS}/ssa-typo", config, headers={"Content-Type": SSA}, params={"fieldManager": "t"}
    )
    assert resp.status_code == 500
    body = status_of(resp)
    assert body["message"] == (
        "failed to create typed patch object (kubeai/ssa-typo; kubeai.org/v1, Kind=Model): "
        ".spec.min_replicas: field not declared in schema"
    )
    assert "reason" not in body  # the real server has no reason for it
    assert kube("GET", f"{MODELS}/ssa-typo").status_code == 404


def test_field_validation_strict_warn_and_ignore(kube: Kube) -> None:
    body = model_manifest("typo")
    body["spec"]["min_replicas"] = 1
    body["spec"]["targetRequest"] = 3
    strict = kube("POST", MODELS, body, params={"fieldValidation": "Strict"})
    assert strict.status_code == 400
    assert status_of(strict)["reason"] == "BadRequest"
    assert status_of(strict)["message"] == (
        'strict decoding error: unknown field "spec.min_replicas", unknown field "spec.targetRequest"'
    )
    assert kube("GET", f"{MODELS}/typo").status_code == 404

    warned = kube("POST", MODELS, body)  # no fieldValidation: the server's default, Warn
    assert warned.status_code == 201
    assert warned.headers["Warning"] == (
        '299 - "unknown field \\"spec.min_replicas\\"", 299 - "unknown field \\"spec.targetRequest\\""'
    )
    assert "min_replicas" not in warned.json()["spec"]

    def patch(validation: str) -> requests.Response:
        return kube(
            "PATCH",
            f"{MODELS}/typo",
            {"spec": {"scale_down": 1}},
            headers={"Content-Type": MERGE},
            params={"fieldValidation": validation},
        )

    patched = patch("Ignore")
    assert patched.status_code == 200 and "Warning" not in patched.headers
    refused = patch("Strict")
    assert refused.status_code == 400 and 'unknown field "spec.scale_down"' in refused.json()["message"]


# -- 2. dry runs ---------------------------------------------------------------------------


def test_dry_runs_validate_answer_and_store_nothing(kube: Kube) -> None:
    rv = kube("GET", MODELS).json()["metadata"]["resourceVersion"]
    created = kube("POST", MODELS, model_manifest("dry"), params={"dryRun": "All"})
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert "resourceVersion" not in meta
    assert created.json()["spec"]["targetRequests"] == 100  # defaults applied
    assert kube.names() == []
    bad = model_manifest("dry")
    bad["spec"]["url"] = "ftp://x"
    assert kube("POST", MODELS, bad, params={"dryRun": "All"}).status_code == 422  # still validated

    stored = kube.create("kept", replicas=1)
    rv = stored["metadata"]["resourceVersion"]
    patched = kube(
        "PATCH",
        f"{MODELS}/kept",
        {"spec": {"replicas": 3}},
        headers={"Content-Type": MERGE},
        params={"dryRun": "All"},
    )
    assert patched.status_code == 200 and patched.json()["spec"]["replicas"] == 3
    replaced_body = kube("GET", f"{MODELS}/kept").json()
    replaced_body["spec"]["args"] = ["--x"]
    replaced = kube("PUT", f"{MODELS}/kept", replaced_body, params={"dryRun": "All"})
    assert replaced.status_code == 200 and replaced.json()["spec"]["args"] == ["--x"]
    deleted = kube("DELETE", f"{MODELS}/kept", params={"dryRun": "All"})
    assert deleted.status_code == 200 and deleted.json()["status"] == "Success"
    now = kube("GET", f"{MODELS}/kept").json()
    assert now["spec"]["replicas"] == 1 and "args" not in now["spec"]
    # nothing happened: no event after the create (the controller's status write aside)
    events = [e for e in kube.watch(resourceVersion=rv) if e["object"]["metadata"].get("name") == "kept"]
    assert all(e["object"]["spec"]["replicas"] == 1 for e in events)
    assert all(e["type"] == "MODIFIED" for e in events)


# -- 3. scale ------------------------------------------------------------------------------


def test_scale_without_spec_replicas_is_a_500_and_has_no_selector(kube: Kube) -> None:
    kube.create("noreplicas")
    resp = kube("GET", f"{MODELS}/noreplicas/scale")
    assert resp.status_code == 500
    why = 'the spec replicas field ".spec.replicas" does not exist'
    assert status_of(resp)["message"] == f"Internal error occurred: {why}"
    assert resp.json()["reason"] == "InternalError" and resp.json()["details"] == {
        "causes": [{"message": why}]
    }
    # an update starts from a stand-in: a patch that sets replicas works, one that does not is invalid
    scaled = kube(
        "PATCH", f"{MODELS}/noreplicas/scale", {"spec": {"replicas": 1}}, headers={"Content-Type": MERGE}
    )
    assert scaled.status_code == 200 and scaled.json()["spec"] == {"replicas": 1}
    kube("PATCH", f"{MODELS}/noreplicas", {"spec": {"replicas": None}}, headers={"Content-Type": MERGE})
    unset = kube(
        "PATCH",
        f"{MODELS}/noreplicas/scale",
        {"metadata": {"labels": {"a": "b"}}},
        headers={"Content-Type": MERGE},
    )
    assert unset.status_code == 422 and "must be greater than or equal to 0" in unset.json()["message"]
    kube.create("scaled", replicas=2)
    scale = kube("GET", f"{MODELS}/scaled/scale").json()
    assert scale["spec"] == {"replicas": 2}
    assert "selector" not in scale["status"]  # KubeAI's CRD has no labelSelectorPath


# -- 5. bounded watch history --------------------------------------------------------------


def test_watch_and_exact_list_before_the_window_are_410(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(watch_history_seconds=0.5, startup_delay=60)
    kube = Kube(sandbox)
    first = kube.create("early")["metadata"]["resourceVersion"]
    kube.create("late")
    exact = kube("GET", MODELS, params={"resourceVersion": first, "resourceVersionMatch": "Exact"})
    assert exact.status_code == 200
    assert [i["metadata"]["name"] for i in exact.json()["items"]] == ["early"]  # as it was then
    time.sleep(0.6)
    kube("PATCH", f"{MODELS}/late", {"spec": {"args": ["--y"]}}, headers={"Content-Type": MERGE})
    events = list(kube.watch(resourceVersion=first))
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    assert events[0]["object"]["message"].startswith(f"too old resource version: {first} (")
    gone = kube("GET", MODELS, params={"resourceVersion": first, "resourceVersionMatch": "Exact"})
    assert gone.status_code == 410
    assert status_of(gone)["message"] == "The resourceVersion for the provided list is too old."


# -- 6. watch-list -------------------------------------------------------------------------


def test_watch_list_ends_its_initial_events_with_the_bookmark(kube: Kube) -> None:
    kube.create("one")
    kube.create("two")
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
    }
    events = kube.watch(**params)
    initial = [next(events), next(events)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [
        ("ADDED", "one"),
        ("ADDED", "two"),
    ]
    bookmark = next(events)
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in initial
    )
    refused = kube("GET", MODELS, params={"watch": "true", "sendInitialEvents": "true"})
    assert refused.status_code == 422 and status_of(refused)["reason"] == "Invalid"
    assert "sendInitialEvents requires setting allowWatchBookmarks to true" in refused.json()["message"]


# -- 7. paging -----------------------------------------------------------------------------


def test_limit_and_continue_page_a_consistent_snapshot(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(watch_history_seconds=1.0, startup_delay=60)
    kube = Kube(sandbox)
    for name in ("a", "b", "c"):
        kube.create(name)
    page = kube("GET", MODELS, params={"limit": 2}).json()
    assert [i["metadata"]["name"] for i in page["items"]] == ["a", "b"]
    assert page["metadata"]["remainingItemCount"] == 1
    kube.create("d")  # after the first page: not in this list
    rest = kube("GET", MODELS, params={"limit": 2, "continue": page["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"]
    assert "continue" not in rest["metadata"]
    assert kube.names() == ["a", "b", "c", "d"]

    token = kube("GET", MODELS, params={"limit": 1}).json()["metadata"]["continue"]
    kube.create("e")
    time.sleep(1.1)
    kube.create("f")  # "e" leaves the window: the snapshot before it is compacted away
    expired = kube("GET", MODELS, params={"limit": 1, "continue": token})
    assert expired.status_code == 410 and status_of(expired)["reason"] == "Expired"
    assert expired.json()["message"].startswith("The provided continue parameter is too old")
    assert kube("GET", MODELS, params={"continue": "garbage!"}).status_code == 400


# -- 8. deletion ---------------------------------------------------------------------------


def test_foreground_delete_keeps_the_object_with_its_finalizer(kube: Kube) -> None:
    uid = kube.create("fg")["metadata"]["uid"]
    resp = kube("DELETE", f"{MODELS}/fg", {"propagationPolicy": "Foreground"})
    assert resp.status_code == 200
    meta = resp.json()["metadata"]
    assert meta["finalizers"] == ["foregroundDeletion"] and meta["deletionTimestamp"] and meta["uid"] == uid
    # no garbage collector here: it stays until its finalizer goes
    assert kube("GET", f"{MODELS}/fg").json()["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    again = kube("DELETE", f"{MODELS}/fg")
    assert again.status_code == 200 and again.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    done = kube("PATCH", f"{MODELS}/fg", {"metadata": {"finalizers": None}}, headers={"Content-Type": MERGE})
    assert done.status_code == 200
    assert kube("GET", f"{MODELS}/fg").status_code == 404

    kube.create("bg")
    background = kube("DELETE", f"{MODELS}/bg", {"propagationPolicy": "Background"})
    assert background.json()["status"] == "Success" and kube("GET", f"{MODELS}/bg").status_code == 404
    kube.create("orphan")
    orphan = kube("DELETE", f"{MODELS}/orphan", params={"propagationPolicy": "Orphan"})
    assert orphan.json()["metadata"]["finalizers"] == ["orphan"]


def test_delete_preconditions_are_409(kube: Kube) -> None:
    created = kube.create("pre")
    resp = kube("DELETE", f"{MODELS}/pre", {"preconditions": {"uid": "not-it"}})
    assert resp.status_code == 409
    body = status_of(resp)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on models.kubeai.org "pre": Precondition failed: '
        f"UID in precondition: not-it, UID in object meta: {created['metadata']['uid']}"
    )
    assert body["details"] == {"name": "pre", "group": "kubeai.org", "kind": "models"}
    current = kube("GET", f"{MODELS}/pre").json()["metadata"]["resourceVersion"]
    stale = kube("DELETE", f"{MODELS}/pre", {"preconditions": {"resourceVersion": "999999"}})
    assert stale.status_code == 409
    assert (
        f"ResourceVersion in precondition: 999999, ResourceVersion in object meta: {current}"
        in stale.json()["message"]
    )
    ok = kube("DELETE", f"{MODELS}/pre", {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert ok.status_code == 200 and ok.json()["details"]["uid"] == created["metadata"]["uid"]


# -- 9. errors -----------------------------------------------------------------------------


def test_missing_namespace_is_404_after_authorization(make_kubeai_sandbox: Any, kube: Kube) -> None:
    forbidden = kube("POST", "/apis/kubeai.org/v1/namespaces/nowhere/models", model_manifest("x"))
    assert forbidden.status_code == 403  # the provider's Role is in its namespace only: authz first
    assert status_of(forbidden)["details"] == {"group": "kubeai.org", "kind": "models"}

    admin = Kube(make_kubeai_sandbox(cluster_admin=True, startup_delay=60))
    resp = admin("POST", "/apis/kubeai.org/v1/namespaces/nowhere/models", model_manifest("x"))
    assert resp.status_code == 404
    body = status_of(resp)
    assert body["reason"] == "NotFound" and body["message"] == 'namespaces "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}
    missing = admin("GET", "/apis/kubeai.org/v1/namespaces/nowhere/models/x")
    assert missing.status_code == 404 and status_of(missing)["details"] == {
        "name": "x",
        "group": "kubeai.org",
        "kind": "models",
    }
    assert admin("GET", "/apis/kubeai.org/v1/namespaces/nowhere/models").json()["items"] == []


# -- 10 (without kubectl): namespaces, cluster-wide lists, version, openapi -----------------


def test_namespaces_cluster_lists_version_and_openapi(make_kubeai_sandbox: Any) -> None:
    admin = Kube(make_kubeai_sandbox(cluster_admin=True, namespaces=("kubeai", "team"), startup_delay=60))
    names = [n["metadata"]["name"] for n in admin("GET", "/api/v1/namespaces").json()["items"]]
    assert names == ["kubeai", "team"]
    in_team = model_manifest("t")
    in_team["metadata"]["namespace"] = "team"
    assert admin("POST", "/apis/kubeai.org/v1/namespaces/team/models", in_team).status_code == 201
    admin.create("k")
    everywhere = admin("GET", "/apis/kubeai.org/v1/models").json()
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in everywhere["items"]] == [
        ("kubeai", "k"),
        ("team", "t"),
    ]
    version = admin("GET", "/version").json()
    assert version["gitVersion"].startswith("v1.36.") and version["minor"] == "36"
    index = admin("GET", "/openapi/v3").json()["paths"]["apis/kubeai.org/v1"]["serverRelativeURL"]
    v3 = admin("GET", index).json()
    model = v3["components"]["schemas"]["org.kubeai.v1.Model"]
    assert model["x-kubernetes-group-version-kind"] == [
        {"group": "kubeai.org", "kind": "Model", "version": "v1"}
    ]
    assert "minReplicas" in model["properties"]["spec"]["properties"]
    patch = v3["paths"]["/apis/kubeai.org/v1/namespaces/{namespace}/models/{name}"]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "org.kubeai.v1.Model" in admin("GET", "/openapi/v2").json()["definitions"]


def test_a_namespaced_token_cannot_list_cluster_wide(kube: Kube) -> None:
    resp = kube("GET", "/apis/kubeai.org/v1/models")
    assert resp.status_code == 403
    assert status_of(resp)["message"].endswith(
        'cannot list resource "models" in API group "kubeai.org" at the cluster scope'
    )
    assert kube("GET", "/api/v1/namespaces").status_code == 403


# -- 11. wording ---------------------------------------------------------------------------


def test_cel_and_type_error_wording_of_v1_36(kube: Kube) -> None:
    bad = model_manifest("worded")
    bad["spec"].update(minReplicas=3, maxReplicas=1)
    resp = kube("POST", MODELS, bad)
    messages = [c["message"] for c in resp.json()["details"]["causes"]]
    assert "Invalid value: minReplicas should be less than or equal to maxReplicas." in messages
    assert not any('"object"' in m for m in messages)

    typed = model_manifest("typed")
    typed["spec"]["minReplicas"] = "two"
    typed["spec"]["adapters"] = [{"name": "a", "url": "hf://a/b"}]  # a CEL rule that is skipped
    body = kube("POST", MODELS, typed).json()
    causes = [(c["field"], c["message"]) for c in body["details"]["causes"]]
    assert (
        "spec.minReplicas",
        'Invalid value: "string": spec.minReplicas in body must be of type integer: "string"',
    ) in causes
    assert causes[-1] == (
        "<nil>",
        'Invalid value: "null": some validation rules were not checked because the object was invalid; '
        "correct the existing errors to complete validation",
    )
    assert not any("adapters" in m for _, m in causes)


def test_the_controller_still_reconciles_through_the_new_write_path(kube: Kube) -> None:
    kube.create("alive", replicas=1)
    wait_until(
        lambda: (kube("GET", f"{MODELS}/alive").json().get("status") or {}).get("replicas", {}).get("ready")
    )
