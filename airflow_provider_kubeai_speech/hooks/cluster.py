"""KubeAI Models through the Kubernetes API: apply, read, scale, delete, and wait for readiness.

Works on any ``kubernetes`` ``ApiClient`` (the hook gets one from cncf-kubernetes'
``KubernetesHook``). Transient API errors (429 with Retry-After, 500, 503, 504, dropped
connections, and 409 on idempotent writes) are retried; readiness is awaited with a watch that
resumes from the last resourceVersion, re-lists on 410 Gone and reconnects on dropped streams.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_kubeai_speech.capacity import capacity_shortfall
from airflow_provider_kubeai_speech.exceptions import (
    CapacityNotProvidedError,
    KubeAIClusterError,
    ModelDeletedError,
    ModelNotFoundError,
    ReadinessTimeoutError,
)
from airflow_provider_kubeai_speech.hooks.cluster_retry import api_status, backoff, is_transient, retry_policy
from airflow_provider_kubeai_speech.model_status import ModelStatus
from airflow_provider_kubeai_speech.spec import GROUP, PLURAL, VERSION

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

FIELD_MANAGER = "airflow-kubeai-speech"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
#: longest single watch request; the wait re-lists after it (cheap insurance against lost events)
WATCH_SECONDS = 300
T = TypeVar("T")


def cluster_error(err: Exception, what: str) -> KubeAIClusterError:
    """Turn a kubernetes ``ApiException`` into a provider error carrying the API server's message."""
    status = api_status(err) or 0
    body = getattr(err, "body", None)
    message, reason = str(getattr(err, "reason", "") or err), ""
    if body:
        try:
            decoded = json.loads(body)
            message, reason = decoded.get("message", message), decoded.get("reason", "")
        except (ValueError, AttributeError):
            message = str(body)[:500]
    hint = {
        401: " Fix: the Kubernetes connection's credentials were refused (kubeconfig token or in-cluster service account).",
        403: " Fix: grant the Airflow service account access to models.kubeai.org in KubeAI's namespace (Role/RoleBinding).",
        404: " Fix: is KubeAI installed (CRD models.kubeai.org) and is the namespace right?",
    }.get(status, "")
    return KubeAIClusterError(
        f"{what}: Kubernetes API answered {status} {reason}: {message}.{hint}".replace("..", "."),
        status=status,
        reason=reason,
    )


def unreachable_error(err: BaseException, what: str, host: str | None) -> KubeAIClusterError:
    """One line for a Kubernetes API server that cannot be reached (refused, unknown host, timed
    out), naming the server and the cause, instead of urllib3's ``MaxRetryError`` text."""
    cause: BaseException = getattr(err, "reason", None) or err  # MaxRetryError wraps the real error
    text = str(cause)
    for marker in ("Failed to establish a new connection: ", "Failed to resolve ", ">: ", "): "):
        if marker in text:
            text = text.split(marker, 1)[1] if marker.endswith(": ") else marker + text.split(marker, 1)[1]
            break
    return KubeAIClusterError(
        f"{what}: cannot reach the Kubernetes API server at {host or 'the configured address'} "
        f"({type(cause).__name__}: {text.strip() or 'no detail'}). Fix: is the cluster up, and does "
        "the Kubernetes connection (kubeconfig server, or in-cluster) point at it?"
    )


class ModelClient:
    """Models in one namespace, through an official-client ``ApiClient``.

    :param api_client: ``kubernetes.client.ApiClient``.
    :param namespace: KubeAI's namespace.
    :param attempts: tries per call for transient errors.
    """

    def __init__(self, api_client: Any, namespace: str, attempts: int = 6) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.attempts = attempts

    def _call(self, what: str, fn: Callable[[], T], *, write: bool = False) -> T:
        import tenacity
        import urllib3
        from kubernetes.client import ApiException

        connection_errors = (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
        retrying = tenacity.Retrying(
            **retry_policy(
                what,
                attempts=self.attempts,
                write=write,
                connection_errors=connection_errors,
            )
        )
        try:
            return retrying(fn)
        except ApiException as err:
            raise cluster_error(err, what) from err
        except connection_errors as err:
            host = getattr(getattr(self.api.api_client, "configuration", None), "host", None)
            host = host if isinstance(host, str) else None
            failure = unreachable_error(err, what, host)
            # The cause stays attached (its message names the URL), without urllib3's frames and
            # inner chain: the task log shows a few lines, not a 120-line MaxRetryError traceback.
            err.__cause__, err.__suppress_context__ = None, True
            raise failure from err.with_traceback(None)

    # -- reads -------------------------------------------------------------------------------

    def find(self, name: str) -> tuple[dict[str, Any] | None, str]:
        """The Model (or None) and the list's resourceVersion, in one request."""
        listed = self._call(
            f"read Model {self.namespace}/{name}",
            lambda: self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, field_selector=f"metadata.name={name}"
            ),
        )
        items = listed.get("items") or []
        return (items[0] if items else None), str(listed["metadata"]["resourceVersion"])

    def get(self, name: str) -> dict[str, Any]:
        model, _ = self.find(name)
        if model is None:
            raise ModelNotFoundError(f"KubeAI Model {name!r} does not exist in namespace {self.namespace!r}.")
        return model

    def list(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        listed = self._call(
            f"list Models in {self.namespace}",
            lambda: self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, label_selector=label_selector or ""
            ),
        )
        return list(listed.get("items") or [])

    # -- writes ------------------------------------------------------------------------------

    def apply(self, manifest: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply (one request when the Model exists; a create answers 201, read back)."""
        name = manifest["metadata"]["name"]
        what = f"apply Model {self.namespace}/{name}"
        result = self._call(
            what,
            lambda: self.api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                manifest,
                field_manager=FIELD_MANAGER,
                force=force,
                _content_type=APPLY_CONTENT_TYPE,
            ),
            write=True,
        )
        # The official client only decodes 200 bodies: a create (201) returns None.
        return result if isinstance(result, dict) else self.get(name)

    def scale(self, name: str, replicas: int, min_replicas: int | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"replicas": replicas}
        if min_replicas is not None:
            spec["minReplicas"] = min_replicas
        return self._call(
            f"scale Model {self.namespace}/{name}",
            lambda: self.api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}, field_manager=FIELD_MANAGER
            ),
            write=True,
        )

    def delete(self, name: str, *, ignore_not_found: bool = True) -> bool:
        """Delete; True if it existed."""
        try:
            self._call(f"delete Model {self.namespace}/{name}", lambda: self._delete_raw(name), write=True)
        except KubeAIClusterError as err:
            if err.status == 404 and ignore_not_found:
                return False
            if err.status == 404:
                raise ModelNotFoundError(
                    f"KubeAI Model {name!r} does not exist in namespace {self.namespace!r}."
                ) from err
            raise
        return True

    def _delete_raw(self, name: str) -> Any:
        return self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    # -- waiting -----------------------------------------------------------------------------

    def wait_for(
        self,
        name: str,
        condition: Callable[[dict[str, Any] | None], bool],
        *,
        timeout: float,
        what: str,
        on_change: Callable[[dict[str, Any] | None], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
        connect_timeout: float = 10.0,
    ) -> dict[str, Any] | None:
        """Watch one Model until ``condition(model or None)`` holds; returns that state.

        :raises TimeoutError: at the deadline (the caller words it).
        """
        import urllib3
        from kubernetes import watch
        from kubernetes.client import ApiException

        cursor = ModelWatch(name, condition, timeout, on_change)
        if cursor.reset(*self.find(name)):
            return cursor.model
        while True:
            if cursor.expired() or stop():
                raise TimeoutError(what)
            watcher = watch.Watch()
            seconds = cursor.watch_seconds()
            try:
                for event in watcher.stream(
                    self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                    **cursor.watch_arguments(), _request_timeout=(connect_timeout, seconds + 15),
                ):  # fmt: skip
                    if cursor.on_event(event["type"], event["object"]):
                        watcher.stop()
                        return cursor.model
                    if cursor.expired() or stop():
                        watcher.stop()
                        break
            except ApiException as err:
                if err.status != 410 and not is_transient(err):
                    raise cluster_error(err, what) from err
                log.info("%s: watch ended with %s; re-listing", what, err.status)
                time.sleep(cursor.pause_after_failure(err))
            except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
                log.info("%s: watch stream dropped (%s); reconnecting", what, type(err).__name__)
                time.sleep(cursor.pause_after_failure())
            # The stream ended (timeout, drop or 410): re-read the state, then watch from it.
            if cursor.reset(*self.find(name)):
                return cursor.model


class ModelWatch:
    """The state both wait loops (sync and async) share: cursor, condition, deadline, failures.

    :param name: the Model watched.
    :param condition: done when it returns True for the current Model (None when absent).
    :param timeout: seconds until the deadline.
    :param on_change: told of every state seen.
    """

    def __init__(
        self,
        name: str,
        condition: Callable[[dict[str, Any] | None], bool],
        timeout: float,
        on_change: Callable[[dict[str, Any] | None], None] | None,
    ) -> None:
        self.name = name
        self.condition = condition
        self.on_change = on_change
        self.deadline = time.monotonic() + timeout
        self.model: dict[str, Any] | None = None
        self.resource_version = ""
        self.failures = 0

    def reset(self, model: dict[str, Any] | None, resource_version: str) -> bool:
        """After a (re-)list: take the state and the list's resourceVersion; True when done."""
        self.model, self.resource_version = model, resource_version
        return self._check()

    def on_event(self, kind: str, obj: dict[str, Any]) -> bool:
        """One watch event; True when done."""
        self.failures = 0
        if isinstance(obj, dict):
            self.resource_version = str(
                obj.get("metadata", {}).get("resourceVersion") or self.resource_version
            )
        if kind == "BOOKMARK":
            return False
        self.model = None if kind == "DELETED" else obj
        return self._check()

    def _check(self) -> bool:
        if self.on_change is not None:
            self.on_change(self.model)
        return self.condition(self.model)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch_seconds(self) -> int:
        return max(1, int(min(self.remaining(), WATCH_SECONDS) + 0.999))

    def watch_arguments(self) -> dict[str, Any]:
        return {
            "field_selector": f"metadata.name={self.name}",
            "resource_version": self.resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": self.watch_seconds(),
        }

    def pause_after_failure(self, err: BaseException | None = None) -> float:
        """Seconds to wait before re-listing (none after 410 Gone: re-list at once)."""
        self.failures += 1
        if err is not None and api_status(err) == 410:
            return 0.0
        return min(backoff(self.failures, err), self.remaining())


def readiness(
    min_ready_replicas: int, *, missing_ok: bool, name: str, namespace: str
) -> Callable[[dict[str, Any] | None], bool]:
    """The condition ``wait_for`` needs for 'ready', raising when the Model is gone."""

    def ready(model: dict[str, Any] | None) -> bool:
        if model is None:
            if missing_ok:
                return False
            raise ModelDeletedError(
                f"KubeAI Model {namespace}/{name} does not exist (or was deleted while waiting for it)."
            )
        if ModelStatus.from_model(model).is_ready(min_ready_replicas):
            return True
        shortfall = capacity_shortfall(model, min_ready_replicas)
        if shortfall is not None:
            raise CapacityNotProvidedError(shortfall)
        return False

    return ready


def readiness_timeout(
    name: str, namespace: str, last: ModelStatus | None, min_ready: int, timeout: float
) -> ReadinessTimeoutError:
    state = last.describe(min_ready) if last else "the Model does not exist"
    return ReadinessTimeoutError(
        f"KubeAI Model {namespace}/{name} was not ready within {timeout:g} s: {state}. Pods may be pending "
        "(resource profile without capacity) or slow to pull the image; check `kubectl -n "
        f"{namespace} get pods -l model={name}`.",
        ready_replicas=last.ready_replicas if last else 0,
    )
