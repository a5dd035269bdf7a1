"""The Kubernetes API subset for ``kubeai.org/v1`` Models (and the pods KubeAI makes for them).

Enough of the real protocol that the official ``kubernetes`` client, ``kubernetes_asyncio`` and
cncf-kubernetes' ``KubernetesHook`` work against it unchanged: discovery, CRUD, four patch types,
``status`` and ``scale`` subresources, watches with bookmarks and 410 Gone, label and field
selectors, ``Status`` error bodies, bearer-token authentication and per-namespace permissions.
"""

from __future__ import annotations

import copy
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any

from local_kubeai.http import BaseHandler
from local_kubeai.kube_errors import ApiError
from local_kubeai.selectors import field_selector, label_selector
from local_kubeai.store import merge_patch

if TYPE_CHECKING:
    from local_kubeai.server import Sandbox

_MODELS = re.compile(
    r"/apis/kubeai\.org/v1/namespaces/(?P<ns>[^/]+)/models(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|scale))?"
)
_PODS = re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/pods")
_SERVICE_ACCOUNT = "system:serviceaccount:airflow:airflow-worker"
_DEFAULT_WATCH_SECONDS = 1800


_GROUP_VERSION = {"groupVersion": "kubeai.org/v1", "version": "v1"}


def _discovery(sandbox: Sandbox) -> dict[str, Any]:
    verbs = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
    return {
        "/version": {
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.0-kubeai-sandbox",
            "platform": "linux/amd64",
        },
        "/api": {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": sandbox.kube_address}
            ],
        },
        "/api/v1": {
            "kind": "APIResourceList",
            "groupVersion": "v1",
            "resources": [
                {
                    "name": "pods",
                    "singularName": "pod",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get", "list"],
                }
            ],
        },
        "/apis": {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": "kubeai.org",
                    "versions": [_GROUP_VERSION],
                    "preferredVersion": _GROUP_VERSION,
                }
            ],
        },
        "/apis/kubeai.org": {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": "kubeai.org",
            "versions": [_GROUP_VERSION],
            "preferredVersion": _GROUP_VERSION,
        },
        "/apis/kubeai.org/v1": {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "kubeai.org/v1",
            "resources": [
                {
                    "name": "models",
                    "singularName": "model",
                    "namespaced": True,
                    "kind": "Model",
                    "verbs": verbs,
                },
                {
                    "name": "models/scale",
                    "singularName": "",
                    "namespaced": True,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                },
                {
                    "name": "models/status",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "Model",
                    "verbs": ["get", "patch", "update"],
                },
            ],
        },
    }


class KubeApiHandler(BaseHandler):
    """Routes one Kubernetes API request."""

    @property
    def sandbox(self) -> Sandbox:
        return self.server.app  # type: ignore[no-any-return,unused-ignore]

    def _dispatch(self) -> None:
        try:
            self._authenticate()
            path = self.path_only
            discovery = _discovery(self.sandbox)
            if self.command == "GET" and path in discovery:
                self.send_json(200, discovery[path])
                return
            if match := _PODS.fullmatch(path):
                self._authorize(match["ns"], "list", "pods", "")
                self._list_pods(match["ns"])
                return
            match = _MODELS.fullmatch(path)
            if not match:
                raise ApiError(404, "the server could not find the requested resource", reason="NotFound")
            self._models(match["ns"], match["name"], match["sub"])
        except ApiError as err:
            self._send_status(err)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def _send_status(self, err: ApiError) -> None:
        headers = {}
        if err.retry_after is not None:
            headers["Retry-After"] = str(max(0, round(err.retry_after)))
        self.send_json(err.code, err.status(), headers)

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not hmac.compare_digest(token.encode(), self.sandbox.config.token.encode()):
            raise ApiError(401, "Unauthorized", reason="Unauthorized")

    def _authorize(self, namespace: str, verb: str, resource: str, group: str) -> None:
        """Namespace permissions, and, with ``SandboxConfig.role``, exactly the verbs it grants.

        ``resource`` is ``models``, ``models/status`` or ``models/scale`` (as in an RBAC rule).
        """
        role = self.sandbox.config.role
        granted = namespace in self.sandbox.config.namespaces and (
            role is None or verb in role.get(resource, ())
        )
        if not granted:
            base, _, sub = resource.partition("/")
            group_text = f' in API group "{group}"'
            raise ApiError(
                403,
                f"{base}{'.' + group if group else ''}{'/' + sub if sub else ''} is forbidden: User "
                f'"{_SERVICE_ACCOUNT}" cannot {verb} resource "{base}"{group_text}'
                f'{f" subresource {sub!r}" if sub else ""} in the namespace "{namespace}"',
                details={"group": group, "kind": base},
            )

    def _inject_fault(self, verb: str) -> None:
        status = self.sandbox.faults.kube_fault(write=verb in ("create", "update", "patch", "delete"))
        if status is None:
            return
        retry_after = self.sandbox.faults.faults.retry_after if status in (429, 503) else None
        messages = {
            409: "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
            429: "Too many requests, please try again later.",
            500: "Internal error occurred: injected fault",
        }
        raise ApiError(
            status,
            messages.get(status, f"injected fault {status}"),
            retry_after=retry_after if retry_after is not None else (1 if status == 429 else None),
        )

    # -- models ------------------------------------------------------------------------------

    def _models(self, namespace: str, name: str | None, sub: str | None) -> None:
        store, manager = self.sandbox.store, self.query.get("fieldManager") or self._default_manager()
        verb = self._verb(name)
        self._authorize(namespace, verb, f"models/{sub}" if sub else "models", "kubeai.org")
        self.sandbox.stats.kube_request(verb)
        self._inject_fault(verb)
        if verb == "watch":
            self._watch(namespace)
        elif verb == "list":
            items, rv = store.list_objects(namespace, self._predicate())
            self.send_json(
                200,
                {
                    "apiVersion": "kubeai.org/v1",
                    "kind": "ModelList",
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                },
            )
        elif verb == "create":
            if sub:
                raise ApiError(
                    405,
                    "the server does not allow this method on the requested resource",
                    reason="MethodNotAllowed",
                )
            self.send_json(201, store.create(namespace, self._json_body(), manager))
        elif name is None:
            raise ApiError(
                405,
                "the server does not allow this method on the requested resource",
                reason="MethodNotAllowed",
            )
        elif verb == "get":
            obj = store.get(namespace, name)
            self.send_json(200, _scale_of(obj) if sub == "scale" else obj)
        elif verb == "update":
            body = self._json_body()
            if sub == "scale":
                self.send_json(200, _scale_of(self._set_scale(namespace, name, body, manager)))
            else:
                self.send_json(200, store.replace(namespace, name, body, manager, sub))
        elif verb == "patch":
            self._patch(namespace, name, sub, manager)
        elif verb == "delete":
            gone = store.delete(namespace, name)
            self.send_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": "kubeai.org",
                        "kind": "models",
                        "uid": gone["metadata"]["uid"],
                    },
                },
            )

    def _verb(self, name: str | None) -> str:
        method = self.command
        if method == "GET":
            if name is None:
                return "watch" if _flag(self.query.get("watch")) else "list"
            return "get"
        return {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]

    def _default_manager(self) -> str:
        agent = self.headers.get("User-Agent", "unknown")
        return agent.split("/", 1)[0] or "unknown"

    def _predicate(self) -> Any:
        labels = label_selector(self.query.get("labelSelector"))
        fields = field_selector(self.query.get("fieldSelector"))
        return lambda obj: labels(obj["metadata"].get("labels") or {}) and fields(obj)

    def _json_body(self) -> Any:
        raw = self.read_body()
        try:
            return json.loads(raw or b"null")
        except ValueError as err:
            raise ApiError(
                400,
                f"the body of the request was in an unknown format - accepted media types include: application/json ({err})",
            ) from None

    def _patch(self, namespace: str, name: str, sub: str | None, manager: str) -> None:
        store = self.sandbox.store
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        raw = self.read_body()
        if content_type == "application/apply-patch+yaml":
            if not self.query.get("fieldManager"):
                raise ApiError(
                    400,
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                )
            if sub:
                raise ApiError(
                    415,
                    "apply patches are not supported on subresources by this sandbox",
                    reason="UnsupportedMediaType",
                )
            import yaml

            try:
                config = yaml.safe_load(raw)
            except yaml.YAMLError as err:
                raise ApiError(400, f"error decoding YAML: {err}") from None
            if store.find(namespace, name) is None:  # an apply that creates needs create too
                self._authorize(namespace, "create", "models", "kubeai.org")
            obj, created = store.apply(namespace, name, config, manager, force=_flag(self.query.get("force")))
            self.send_json(201 if created else 200, obj)
            return
        try:
            patch = json.loads(raw)
        except ValueError as err:
            raise ApiError(400, f"error decoding patch: {err}") from None
        if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            change = lambda current: merge_patch(current, patch)  # noqa: E731
        elif content_type == "application/json-patch+json":
            change = lambda current: _json_patch(current, patch)  # noqa: E731
        else:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type!r})",
                reason="UnsupportedMediaType",
            )
        if sub == "scale":
            current_scale = _scale_of(store.get(namespace, name))
            self.send_json(200, _scale_of(self._set_scale(namespace, name, change(current_scale), manager)))
            return
        self.send_json(200, store.mutate(namespace, name, change, manager, sub))

    def _set_scale(self, namespace: str, name: str, scale: dict[str, Any], manager: str) -> dict[str, Any]:
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0',
            )

        def change(obj: dict[str, Any]) -> dict[str, Any]:
            obj["spec"]["replicas"] = replicas
            wanted = (scale.get("metadata") or {}).get("resourceVersion")
            if wanted:
                obj["metadata"]["resourceVersion"] = wanted
            else:
                obj["metadata"].pop("resourceVersion", None)
            return obj

        return self.sandbox.store.mutate(namespace, name, change, manager)

    # -- watch -------------------------------------------------------------------------------

    def _watch(self, namespace: str) -> None:
        store, faults = self.sandbox.store, self.sandbox.faults
        predicate = self._predicate()
        raw_rv = self.query.get("resourceVersion") or ""
        start: int | None = int(raw_rv) if raw_rv not in ("", "0") else None
        timeout = float(self.query.get("timeoutSeconds") or _DEFAULT_WATCH_SECONDS)
        if faults.faults.watch_max_seconds > 0:
            timeout = min(timeout, faults.faults.watch_max_seconds)
        bookmarks = _flag(self.query.get("allowWatchBookmarks"))
        interval = self.sandbox.config.bookmark_interval
        self.start_chunked("application/json")
        try:
            if start is not None and faults.watch_gone():
                raise ApiError(410, f"too old resource version: {start}", reason="Expired")
            events, last = store.watch_from(start)
            self._send_events(events, namespace, predicate)
            last = max([last, *(e[0] for e in events)])
            end = time.monotonic() + timeout
            next_bookmark = time.monotonic() + interval
            while not self.server.stopping:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                events = store.wait_for_events(
                    last, timeout=min(remaining, max(0.0, next_bookmark - time.monotonic()), 0.5)
                )
                self._send_events(events, namespace, predicate)
                if events:
                    last = events[-1][0]
                if bookmarks and time.monotonic() >= next_bookmark:
                    self._event(
                        "BOOKMARK",
                        {
                            "kind": "Model",
                            "apiVersion": "kubeai.org/v1",
                            "metadata": {"resourceVersion": str(last)},
                        },
                    )
                    next_bookmark = time.monotonic() + interval
            self.end_chunked()
        except ApiError as err:
            self._event("ERROR", err.status())
            self.end_chunked()
        except (ConnectionError, BrokenPipeError, OSError):
            self.close_connection = True

    def _send_events(
        self, events: list[tuple[int, str, dict[str, Any]]], namespace: str, predicate: Any
    ) -> None:
        for _, kind, obj in events:
            if obj["metadata"]["namespace"] == namespace and predicate(obj):
                self._event(kind, obj)

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        self.write_chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    # -- pods --------------------------------------------------------------------------------

    def _list_pods(self, namespace: str) -> None:
        if self.command != "GET":
            raise ApiError(405, "the sandbox only lists pods", reason="MethodNotAllowed")
        self.sandbox.stats.kube_request("list-pods")
        labels = label_selector(self.query.get("labelSelector"))
        pods = [p for p in self.sandbox.controller.pod_objects(namespace) if labels(p["metadata"]["labels"])]
        self.send_json(
            200,
            {
                "apiVersion": "v1",
                "kind": "PodList",
                "metadata": {"resourceVersion": str(self.sandbox.store.resource_version)},
                "items": pods,
            },
        )


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", {}).get("all", 0),
            "selector": f"model={meta['name']}",
        },
    }


def _json_patch(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    import jsonpatch

    try:
        return jsonpatch.apply_patch(copy.deepcopy(current), operations)  # type: ignore[no-any-return,unused-ignore]
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as err:
        raise ApiError(
            422, f"the server rejected our request due to an error in our request: {err}"
        ) from None
