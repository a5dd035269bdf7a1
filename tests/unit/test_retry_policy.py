"""The one retry policy of the sync and async Model clients (hooks/cluster_retry.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest import mock

import pytest
import urllib3
from kubernetes.client import ApiException
from kubernetes_asyncio.client import ApiException as AsyncApiException

from airflow_provider_kubeai_speech.exceptions import KubeAIClusterError
from airflow_provider_kubeai_speech.hooks import cluster_retry
from airflow_provider_kubeai_speech.hooks.async_cluster import AsyncModelClient
from airflow_provider_kubeai_speech.hooks.cluster import ModelClient

MODEL = {"metadata": {"name": "m", "resourceVersion": "1"}}
LISTED = {"items": [MODEL], "metadata": {"resourceVersion": "1"}}


def api_error(status: int, message: str = "boom", cls: type[Any] = ApiException, **headers: str) -> Any:
    err = cls(status=status, reason="Reason")
    err.body = json.dumps({"kind": "Status", "message": message, "reason": "", "code": status})
    err.headers = headers
    return err


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_retry, "backoff", lambda attempt, err=None: 0.0)


def sync_client(*outcomes: Any, attempts: int = 4) -> tuple[ModelClient, mock.MagicMock]:
    client = ModelClient(mock.MagicMock(), "kubeai", attempts=attempts)
    api = mock.MagicMock()
    api.list_namespaced_custom_object.side_effect = list(outcomes)
    api.patch_namespaced_custom_object.side_effect = list(outcomes)
    client.api = api
    return client, api


def test_transient_statuses_are_retried_until_success() -> None:
    client, api = sync_client(api_error(503), api_error(429), api_error(500), LISTED)
    assert client.get("m") == MODEL
    assert api.list_namespaced_custom_object.call_count == 4


def test_the_error_after_the_last_attempt_names_the_api_server_and_keeps_the_cause() -> None:
    client, api = sync_client(*[api_error(503, "etcd is sad")] * 3, attempts=3)
    with pytest.raises(KubeAIClusterError) as err:
        client.get("m")
    assert api.list_namespaced_custom_object.call_count == 3
    assert err.value.status == 503
    assert "read Model kubeai/m: Kubernetes API answered 503" in str(err.value)
    assert "etcd is sad" in str(err.value)
    assert isinstance(err.value.__cause__, ApiException)


def test_conflict_is_retried_on_writes_only() -> None:
    client, api = sync_client(api_error(409), {"spec": {}})
    client.scale("m", 1)
    assert api.patch_namespaced_custom_object.call_count == 2
    client, api = sync_client(api_error(409), LISTED)
    with pytest.raises(KubeAIClusterError, match="409"):
        client.get("m")
    assert api.list_namespaced_custom_object.call_count == 1


def test_a_500_refusing_an_invalid_apply_is_not_retried() -> None:
    schema = "failed to create typed patch object (kubeai.org/v1, Kind=Model): .spec.bogus: field not declared in schema"
    client, api = sync_client(*[api_error(500, schema)] * 6, attempts=6)
    with pytest.raises(KubeAIClusterError, match="field not declared in schema") as err:
        client.apply({"metadata": {"name": "m"}, "spec": {"bogus": 1}})
    assert api.patch_namespaced_custom_object.call_count == 1
    assert err.value.status == 500


def test_client_errors_are_not_retried() -> None:
    client, api = sync_client(api_error(422), {})
    with pytest.raises(KubeAIClusterError, match="422"):
        client.scale("m", 1)
    assert api.patch_namespaced_custom_object.call_count == 1


def test_dropped_connections_are_retried_then_raised_as_one_line() -> None:
    dropped = urllib3.exceptions.ProtocolError("connection reset")
    client, api = sync_client(dropped, LISTED)
    assert client.get("m") == MODEL
    client, api = sync_client(dropped, dropped, attempts=2)
    with pytest.raises(
        KubeAIClusterError, match=r"cannot reach the Kubernetes API server .*connection reset"
    ) as caught:
        client.get("m")
    assert caught.value.__cause__ is dropped
    assert api.list_namespaced_custom_object.call_count == 2


def test_other_errors_are_not_retried() -> None:
    client, api = sync_client(KeyError("x"), LISTED)
    with pytest.raises(KeyError):
        client.get("m")
    assert api.list_namespaced_custom_object.call_count == 1


def test_retry_after_is_honoured_and_capped() -> None:
    assert cluster_retry.retry_after(api_error(429, **{"Retry-After": "2"})) == 2.0
    assert cluster_retry.retry_after(api_error(429, **{"Retry-After": "3600"})) == 60.0
    assert cluster_retry.retry_after(api_error(429)) is None


def async_client(*outcomes: Any, attempts: int = 4) -> tuple[AsyncModelClient, list[Any]]:
    client = AsyncModelClient(mock.MagicMock(), "kubeai", attempts=attempts)
    calls: list[Any] = []
    pending = list(outcomes)

    async def answer(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    client.api = mock.MagicMock()
    client.api.list_namespaced_custom_object = answer
    client.api.delete_namespaced_custom_object = answer
    return client, calls


def test_the_async_client_shares_the_policy() -> None:
    client, calls = async_client(api_error(503, cls=AsyncApiException), OSError("reset"), LISTED)
    assert asyncio.run(client.get("m")) == MODEL
    assert len(calls) == 3

    client, calls = async_client(api_error(409, cls=AsyncApiException), {})
    assert asyncio.run(client.delete("m")) is True
    assert len(calls) == 2

    schema = "failed to create typed patch object: .spec.x: field not declared in schema"
    client, calls = async_client(*[api_error(500, schema, cls=AsyncApiException)] * 3)
    with pytest.raises(KubeAIClusterError, match="field not declared") as err:
        asyncio.run(client.get("m"))
    assert len(calls) == 1 and isinstance(err.value.__cause__, AsyncApiException)

    client, calls = async_client(*[api_error(502, cls=AsyncApiException)] * 2, attempts=2)
    with pytest.raises(KubeAIClusterError, match="read Model kubeai/m: Kubernetes API answered 502"):
        asyncio.run(client.get("m"))
    assert len(calls) == 2


def field_manager_conflict(cls: type[Any] = ApiException) -> Any:
    """The API server's answer to a server-side apply without force that another manager's
    fields contradict: a verdict on the request (sent again, the same answer), not a race."""
    err = cls(status=409, reason="Conflict")
    err.body = json.dumps(
        {
            "kind": "Status",
            "status": "Failure",
            "message": 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas',
            "reason": "Conflict",
            "details": {
                "name": "m",
                "group": "kubeai.org",
                "kind": "models",
                "causes": [
                    {
                        "reason": "FieldManagerConflict",
                        "message": 'conflict with "kubectl"',
                        "field": ".spec.replicas",
                    }
                ],
            },
            "code": 409,
        }
    )
    err.headers = {}
    return err


def already_exists(cls: type[Any] = ApiException) -> Any:
    err = cls(status=409, reason="Conflict")
    err.body = json.dumps(
        {
            "kind": "Status",
            "message": 'models.kubeai.org "m" already exists',
            "reason": "AlreadyExists",
            "code": 409,
        }
    )
    err.headers = {}
    return err


def test_a_field_manager_conflict_is_a_verdict_not_retried() -> None:
    client, api = sync_client(*[field_manager_conflict()] * 6, attempts=6)
    with pytest.raises(KubeAIClusterError, match="Apply failed with 1 conflict") as err:
        client.apply({"metadata": {"name": "m"}, "spec": {"replicas": 2}}, force=False)
    assert api.patch_namespaced_custom_object.call_count == 1
    assert err.value.status == 409


def test_already_exists_is_not_retried_but_a_stale_write_is() -> None:
    assert not cluster_retry.is_transient(already_exists(), write=True)
    assert not cluster_retry.is_transient(field_manager_conflict(AsyncApiException), write=True)
    assert cluster_retry.is_transient(api_error(409, "the object has been modified"), write=True)


def test_the_async_client_retries_a_dropped_keep_alive_connection() -> None:
    """aiohttp's ServerDisconnectedError (a pooled connection the API server closed) and payload
    errors are not OSErrors: the watch loop already treats them as a dropped stream, and so must
    every single call (the re-list after a dropped watch is one)."""
    import aiohttp

    client, calls = async_client(aiohttp.ServerDisconnectedError(), LISTED)
    assert asyncio.run(client.get("m")) == MODEL
    assert len(calls) == 2

    client, calls = async_client(aiohttp.ClientPayloadError("Response payload is not completed"), LISTED)
    assert asyncio.run(client.get("m")) == MODEL
    assert len(calls) == 2

    client, calls = async_client(ValueError("not a connection problem"), LISTED)
    with pytest.raises(ValueError, match="not a connection problem"):
        asyncio.run(client.get("m"))
    assert len(calls) == 1
