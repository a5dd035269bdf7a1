"""The sandbox's Kubernetes API, driven by the official client, kubernetes_asyncio and KubernetesHook."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
import requests
from kubernetes import client, watch

from local_kubeai.testing import wait_until
from tests.integration.conftest import GROUP, PLURAL, VERSION, model_manifest

if TYPE_CHECKING:
    from local_kubeai import Sandbox

NS = "kubeai"
SSA = "application/apply-patch+yaml"


def apply(co: Any, body: dict[str, Any], manager: str = "airflow-kubeai-speech", force: bool = True) -> Any:
    return co.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        body["metadata"]["name"],
        body,
        field_manager=manager,
        force=force,
        _content_type=SSA,
    )


def get(co: Any, name: str) -> dict[str, Any]:
    return co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)  # type: ignore[no-any-return]


def api_error(err: pytest.ExceptionInfo[client.ApiException]) -> dict[str, Any]:
    return json.loads(err.value.body)  # type: ignore[no-any-return]


def test_discovery_works_for_the_dynamic_client(kubeai_sandbox: Sandbox) -> None:
    from kubernetes import config, dynamic

    dyn = dynamic.DynamicClient(config.new_client_from_config(str(kubeai_sandbox.kubeconfig_path)))
    models = dyn.resources.get(api_version="kubeai.org/v1", kind="Model")
    created = models.create(body=model_manifest("dyn"), namespace=NS)
    assert created.metadata.name == "dyn"
    assert [m.metadata.name for m in models.get(namespace=NS).items] == ["dyn"]


def test_create_get_list_replace_delete(custom_objects: Any) -> None:
    co = custom_objects
    created = co.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, model_manifest("crud", labels={"team": "asr"})
    )
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    assert created["spec"]["targetRequests"] == 100  # defaulted from the CRD
    with pytest.raises(client.ApiException) as err:
        co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("crud"))
    assert err.value.status == 409 and api_error(err)["reason"] == "AlreadyExists"

    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("other"))
    listed = co.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="team=asr")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["crud"]
    listed = co.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, field_selector="metadata.name=other"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["other"]

    # The controller writes status right after creation, which bumps the resourceVersion.
    body = wait_until(lambda: (obj := get(co, "crud")).get("status") and obj)
    body["spec"]["args"] = ["--beam-size", "5"]
    replaced = co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "crud", body)
    assert replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(body["metadata"]["resourceVersion"])
    with pytest.raises(client.ApiException) as err:  # stale resourceVersion
        co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "crud", body)
    assert err.value.status == 409 and "the object has been modified" in api_error(err)["message"]

    status = co.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "crud")
    assert status["status"] == "Success"
    with pytest.raises(client.ApiException) as err:
        get(co, "crud")
    assert err.value.status == 404
    assert api_error(err) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'models.kubeai.org "crud" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "crud", "group": "kubeai.org", "kind": "models"},
    }


def test_server_side_apply_is_idempotent_and_tracks_ownership(custom_objects: Any) -> None:
    co = custom_objects
    assert apply(co, model_manifest("ssa", args=["--a"])) is None  # the official client does not decode 201
    first = get(co, "ssa")
    again = apply(co, model_manifest("ssa", args=["--a"]))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # no-op
    updated = apply(co, model_manifest("ssa", replicas=2))
    assert updated["spec"]["replicas"] == 2 and "args" not in updated["spec"]  # a dropped field is removed
    assert updated["metadata"]["generation"] == first["metadata"]["generation"] + 1
    managers = {m["manager"] for m in updated["metadata"]["managedFields"]}
    assert "airflow-kubeai-speech" in managers

    # Another manager changes replicas (as KubeAI's autoscaler does); a non-forced apply conflicts.
    co.patch_namespaced_custom_object_scale(
        GROUP, VERSION, NS, PLURAL, "ssa", {"spec": {"replicas": 3}}, field_manager="kubeai-autoscaler"
    )
    with pytest.raises(client.ApiException) as err:
        apply(co, model_manifest("ssa", replicas=2), force=False)
    assert err.value.status == 409 and 'conflict with "kubeai-autoscaler"' in api_error(err)["message"]
    assert apply(co, model_manifest("ssa", replicas=2), force=True)["spec"]["replicas"] == 2


def test_apply_needs_a_field_manager(kubeai_sandbox: Sandbox) -> None:
    resp = requests.patch(
        f"{kubeai_sandbox.kube_url}/apis/kubeai.org/v1/namespaces/{NS}/models/x",
        data=json.dumps(model_manifest("x")),
        headers={"Authorization": f"Bearer {kubeai_sandbox.config.token}", "Content-Type": SSA},
        timeout=5,
        verify=str(kubeai_sandbox.ca_path),
    )
    assert resp.status_code == 400 and "fieldManager" in resp.json()["message"]


def test_merge_json_and_strategic_patches(custom_objects: Any) -> None:
    co = custom_objects
    co.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, model_manifest("patchy", env={"A": "1", "B": "2"})
    )
    merged = co.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "patchy", {"spec": {"env": {"A": None, "C": "3"}}}
    )
    assert merged["spec"]["env"] == {"B": "2", "C": "3"}
    jsonp = co.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        "patchy",
        [{"op": "replace", "path": "/spec/minReplicas", "value": 1}],
        _content_type="application/json-patch+json",
    )
    assert jsonp["spec"]["minReplicas"] == 1

    def refused(body: Any, content_type: str) -> pytest.ExceptionInfo[client.ApiException]:
        with pytest.raises(client.ApiException) as err:
            co.patch_namespaced_custom_object(
                GROUP, VERSION, NS, PLURAL, "patchy", body, _content_type=content_type
            )
        return err

    err = refused({"spec": {"args": ["--x"]}}, "application/strategic-merge-patch+json")  # none on a CR
    assert err.value.status == 415 and api_error(err)["reason"] == "UnsupportedMediaType"
    assert api_error(err)["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    err = refused([{"op": "test", "path": "/spec/minReplicas", "value": 5}], "application/json-patch+json")
    assert err.value.status == 422


def test_status_and_spec_are_isolated(custom_objects: Any) -> None:
    co = custom_objects
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("iso"))
    wait_until(lambda: get(co, "iso").get("status"))
    body = get(co, "iso")
    body["status"] = {"replicas": {"all": 9, "ready": 9}}
    body["spec"]["args"] = ["--y"]
    replaced = co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "iso", body)
    assert replaced["status"]["replicas"]["all"] != 9 and replaced["spec"]["args"] == ["--y"]
    body = get(co, "iso")
    body["status"] = {"replicas": {"all": 7, "ready": 0}}
    body["spec"]["args"] = ["--z"]
    status = co.replace_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "iso", body)
    assert status["status"]["replicas"]["all"] == 7 and status["spec"]["args"] == ["--y"]


def test_scale_subresource(custom_objects: Any, kubeai_sandbox: Sandbox) -> None:
    co = custom_objects
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("scaly", replicas=1))
    wait_until(lambda: (get(co, "scaly").get("status") or {}).get("replicas", {}).get("ready") == 1)
    scale = co.get_namespaced_custom_object_scale(GROUP, VERSION, NS, PLURAL, "scaly")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1 and scale["status"]["replicas"] == 1
    co.patch_namespaced_custom_object_scale(GROUP, VERSION, NS, PLURAL, "scaly", {"spec": {"replicas": 2}})
    assert get(co, "scaly")["spec"]["replicas"] == 2
    wait_until(lambda: get(co, "scaly")["status"]["replicas"] == {"all": 2, "ready": 2})
    scale = co.get_namespaced_custom_object_scale(GROUP, VERSION, NS, PLURAL, "scaly")
    scale["spec"]["replicas"] = 0
    co.replace_namespaced_custom_object_scale(GROUP, VERSION, NS, PLURAL, "scaly", scale)
    wait_until(lambda: get(co, "scaly")["status"]["replicas"] == {"all": 0, "ready": 0})
    core = client.CoreV1Api(co.api_client)
    assert core.list_namespaced_pod(NS, label_selector="model=scaly").items == []


def test_pods_are_listed_by_model_label(custom_objects: Any) -> None:
    co = custom_objects
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("podded", replicas=2))
    core = client.CoreV1Api(co.api_client)
    pods = wait_until(
        lambda: (
            [
                p
                for p in core.list_namespaced_pod(NS, label_selector="model=podded").items
                if p.status.phase == "Running"
            ][1:]
            and core.list_namespaced_pod(NS, label_selector="model=podded").items
        )
    )
    assert len(pods) == 2
    assert pods[0].metadata.labels == {
        "app": "model",
        "model": "podded",
        "app.kubernetes.io/managed-by": "kubeai",
    }
    assert pods[0].status.conditions[0].type == "Ready"


def test_invalid_objects_are_refused_with_the_crds_messages(custom_objects: Any) -> None:
    bad = model_manifest("bad")
    bad["spec"]["url"] = "ftp://x"
    bad["spec"]["adapters"] = [{"name": "a", "url": "hf://a/b"}]
    bad["spec"]["maxReplicas"] = 1
    bad["spec"]["minReplicas"] = 2
    with pytest.raises(client.ApiException) as err:
        custom_objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, bad)
    body = api_error(err)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    messages = {c["message"] for c in body["details"]["causes"]}
    assert "Invalid value: adapters only supported with VLLM engine." in messages
    assert "Invalid value: minReplicas should be less than or equal to maxReplicas." in messages
    assert any(m.startswith('Invalid value: "ftp://x": url must start with') for m in messages)


def test_unknown_fields_are_pruned(custom_objects: Any) -> None:
    body = model_manifest("pruned")
    body["spec"]["load_balancing"] = {"strategy": "PrefixHash"}  # the seed platform's snake_case defect
    created = custom_objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    assert "load_balancing" not in created["spec"]
    assert created["spec"]["loadBalancing"]["strategy"] == "LeastLoad"


def test_transition_rules_on_update(custom_objects: Any) -> None:
    custom_objects.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, model_manifest("cached", cache_profile="std")
    )
    with pytest.raises(client.ApiException) as err:
        apply(custom_objects, model_manifest("cached", cache_profile="other"))
    assert err.value.status == 422 and "cacheProfile is immutable." in api_error(err)["message"]


def test_unauthorized_and_forbidden(kubeai_sandbox: Sandbox, custom_objects: Any) -> None:
    cfg = client.Configuration()
    cfg.host = kubeai_sandbox.kube_url
    cfg.ssl_ca_cert = str(kubeai_sandbox.ca_path)
    cfg.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(client.ApiException) as err:
        client.CustomObjectsApi(client.ApiClient(cfg)).list_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL
        )
    assert err.value.status == 401
    with pytest.raises(client.ApiException) as err:
        custom_objects.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert err.value.status == 403
    assert (
        'cannot list resource "models" in API group "kubeai.org" in the namespace "default"'
        in api_error(err)["message"]
    )


def test_watch_streams_events_bookmarks_and_410(make_kubeai_sandbox: Any) -> None:
    sandbox = make_kubeai_sandbox(startup_delay=0.3, bookmark_interval=0.1)
    from kubernetes import config

    co = client.CustomObjectsApi(config.new_client_from_config(str(sandbox.kubeconfig_path)))
    co.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, model_manifest("watched", replicas=1, labels={"w": "yes"})
    )
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("ignored", replicas=1))
    start = get(co, "watched")["metadata"]["resourceVersion"]
    seen: list[tuple[str, str, Any]] = []
    w = watch.Watch()
    for event in w.stream(
        co.list_namespaced_custom_object,
        GROUP,
        VERSION,
        NS,
        PLURAL,
        resource_version=start,
        label_selector="w=yes",
        allow_watch_bookmarks=True,
        timeout_seconds=10,
    ):
        obj = event["object"]
        seen.append((event["type"], obj["metadata"].get("name", ""), obj.get("status")))
        if event["type"] == "MODIFIED" and obj["status"]["replicas"]["ready"] == 1:
            co.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "watched")
        if event["type"] == "DELETED":
            w.stop()
    kinds = [kind for kind, _, _ in seen]
    assert "BOOKMARK" in kinds and kinds[-1] == "DELETED"
    assert all(name in ("watched", "") for _, name, _ in seen)

    requests.post(f"{sandbox.kubeai_url}/sandbox/compact", timeout=5)
    with pytest.raises(client.ApiException) as err:
        for _ in watch.Watch().stream(
            co.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NS,
            PLURAL,
            resource_version=start,
            timeout_seconds=2,
        ):
            pass
    assert err.value.status == 410


def test_watch_without_resource_version_starts_with_the_current_state(custom_objects: Any) -> None:
    custom_objects.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("existing"))
    events = list(
        watch.Watch().stream(
            custom_objects.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, timeout_seconds=1
        )
    )
    assert ("ADDED", "existing") in [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def test_kubernetes_hook_from_cncf_kubernetes(kubeai_sandbox: Sandbox) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    hook = KubernetesHook(conn_id="kubernetes_default")
    hook.create_custom_object(
        group=GROUP, version=VERSION, plural=PLURAL, body=model_manifest("hooked"), namespace=NS
    )
    assert (
        hook.get_custom_object(group=GROUP, version=VERSION, plural=PLURAL, name="hooked", namespace=NS)[
            "spec"
        ]["engine"]
        == "FasterWhisper"
    )
    hook.delete_custom_object(group=GROUP, version=VERSION, plural=PLURAL, name="hooked", namespace=NS)
    with pytest.raises(client.ApiException):
        hook.get_custom_object(group=GROUP, version=VERSION, plural=PLURAL, name="hooked", namespace=NS)


async def test_async_client_list_and_watch(kubeai_sandbox: Sandbox) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import watch as awatch

    hook = AsyncKubernetesHook(conn_id="kubernetes_default")
    async with hook.get_conn() as api_client:
        api = aclient.CustomObjectsApi(api_client)
        await api.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, model_manifest("asyncy", replicas=1)
        )
        listed = await api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
        rv = listed["metadata"]["resourceVersion"]
        async with awatch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            NS,
            PLURAL,
            resource_version=rv,
            timeout_seconds=10,
        ) as stream:
            async for event in stream:
                if (event["object"].get("status") or {}).get("replicas", {}).get("ready") == 1:
                    break
        assert event["object"]["metadata"]["name"] == "asyncy"


def test_kube_fault_injection(custom_objects: Any, kubeai_sandbox: Sandbox) -> None:
    kubeai_sandbox.faults.update({"kube_status_rates": {"429": 1.0}, "retry_after": 2})
    with pytest.raises(client.ApiException) as err:
        custom_objects.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "2"
    kubeai_sandbox.faults.update({"kube_status_rates": {}, "kube_conflict_rate": 1.0})
    with pytest.raises(client.ApiException) as err:
        custom_objects.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, model_manifest("conflicted")
        )
    assert err.value.status == 409
    kubeai_sandbox.faults.reset()
    assert custom_objects.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"] == []


def test_concurrent_writers_see_conflicts_not_lost_updates(custom_objects: Any) -> None:
    co = custom_objects
    co.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, model_manifest("racy", env={}))
    results: list[int] = []

    def writer(i: int) -> None:
        body = get(co, "racy")
        body["spec"].setdefault("env", {})[f"K{i}"] = "v"
        try:
            co.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "racy", body)
            results.append(200)
        except client.ApiException as err:
            results.append(err.status)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == len(get(co, "racy")["spec"].get("env", {}))
    assert set(results) <= {200, 409}
