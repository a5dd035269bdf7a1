"""The Kubernetes API subset for ``kubeai.org/v1`` Models (and the pods KubeAI makes for them).

Enough of the real protocol that the official ``kubernetes`` client, ``kubernetes_asyncio`` and
cncf-kubernetes' ``KubernetesHook`` work against it unchanged: discovery, CRUD, four patch types,
``status`` and ``scale`` subresources, watches with bookmarks and 410 Gone, label and field
selectors, ``Status`` error bodies, bearer-token authentication and per-namespace permissions.
And, so that a client's mistakes fail here as they fail on a real cluster: ``fieldValidation``
and ``dryRun``, paging with ``continue`` tokens, watch-lists (``sendInitialEvents``), a bounded
watch history, deletion propagation and preconditions, the OpenAPI documents and ``/version``
kubectl reads. docs/sandbox.rst lists what it does not model.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any

from local_kubeai import kube_errors
from local_kubeai.http import BaseHandler
from local_kubeai.kube_errors import ApiError
from local_kubeai.openapi import SERVER_VERSION, openapi_v2, openapi_v3_group, openapi_v3_index
from local_kubeai.selectors import field_selector, label_selector
from local_kubeai.store import WriteOptions, merge_patch

if TYPE_CHECKING:
    from local_kubeai.server import Sandbox

_MODELS = re.compile(
    r"/apis/kubeai\.org/v1(?:/namespaces/(?P<ns>[^/]+))?/models(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|scale))?"
)
_PODS = re.compile(r"/api/v1/namespaces/(?P<ns>[^/]+)/pods")
_NAMESPACES = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+))?")
_FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
_INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_SERVICE_ACCOUNT = "system:serviceaccount:airflow:airflow-worker"
_DEFAULT_WATCH_SECONDS = 1800


_GROUP_VERSION = {"groupVersion": "kubeai.org/v1", "version": "v1"}


def _discovery(sandbox: Sandbox) -> dict[str, Any]:
    verbs = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
    return {
        "/version": {
            "major": SERVER_VERSION.split(".")[0][1:],
            "minor": SERVER_VERSION.split(".")[1],
            "gitVersion": SERVER_VERSION,
            "gitTreeState": "clean",
            "goVersion": "go1.25.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        },
        "/openapi/v2": openapi_v2(),
        "/openapi/v3": openapi_v3_index(),
        "/openapi/v3/apis/kubeai.org/v1": openapi_v3_group(),
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
                    "name": "namespaces",
                    "singularName": "namespace",
                    "namespaced": False,
                    "kind": "Namespace",
                    "shortNames": ["ns"],
                    "verbs": ["get", "list"],
                },
                {
                    "name": "pods",
                    "singularName": "pod",
                    "namespaced": True,
                    "kind": "Pod",
                    "verbs": ["get", "list"],
                },
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
            if match := _NAMESPACES.fullmatch(path):
                self._namespaces(match["name"])
                return
            match = _MODELS.fullmatch(path)
            if not match or (match["ns"] is None and (match["name"] or self.command != "GET")):
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

    def _authorize(self, namespace: str | None, verb: str, resource: str, group: str) -> None:
        """Namespace permissions, and, with ``SandboxConfig.role``, exactly the verbs it grants.

        ``resource`` is ``models``, ``models/status`` or ``models/scale`` (as in an RBAC rule);
        ``namespace`` None is the cluster scope. With ``SandboxConfig.cluster_admin`` everything
        is granted, in namespaces that do not exist too (they answer 404 after authorization,
        as on a real server).
        """
        config = self.sandbox.config
        granted = config.cluster_admin or (
            namespace in config.namespaces and (config.role is None or verb in config.role.get(resource, ()))
        )
        if not granted:
            base, _, sub = resource.partition("/")
            scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            raise ApiError(
                403,
                f"{base}{'.' + group if group else ''}{'/' + sub if sub else ''} is forbidden: User "
                f'"{_SERVICE_ACCOUNT}" cannot {verb} resource "{base}" in API group "{group}"'
                f"{f' subresource {sub!r}' if sub else ''} {scope}",
                details={"group": group, "kind": base},
            )

    def _require_namespace(self, namespace: str) -> None:
        if namespace not in self.sandbox.config.namespaces:
            raise kube_errors.namespace_not_found(namespace)

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

    def _models(self, namespace: str | None, name: str | None, sub: str | None) -> None:
        store, manager = self.sandbox.store, self.query.get("fieldManager") or self._default_manager()
        verb = self._verb(name)
        self._authorize(namespace, verb, f"models/{sub}" if sub else "models", "kubeai.org")
        self.sandbox.stats.kube_request(verb)
        self._inject_fault(verb)
        if verb == "watch":
            self._watch(namespace)
            return
        if verb == "list":
            self._list_models(namespace)
            return
        assert namespace is not None  # the cluster-wide path only lists and watches
        options = self._write_options()
        if verb == "create":
            if sub:
                raise ApiError(
                    405,
                    "the server does not allow this method on the requested resource",
                    reason="MethodNotAllowed",
                )
            self._require_namespace(namespace)
            self._send_written(201, store.create(namespace, self._json_body(), manager, options), options)
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
                scaled = self._set_scale(namespace, name, body, manager, options)
                self._send_written(200, _scale_of(scaled), options)
            else:
                self._send_written(200, store.replace(namespace, name, body, manager, sub, options), options)
        elif verb == "patch":
            self._patch(namespace, name, sub, manager, options)
        elif verb == "delete":
            self._delete(namespace, name)

    def _write_options(self) -> WriteOptions:
        validation = self.query.get("fieldValidation") or "Warn"  # the server's default since v1.27
        if validation not in _FIELD_VALIDATION:
            raise ApiError(
                400,
                f'fieldValidation parameter unsupported: "{validation}"; must be one of Strict, Warn, Ignore',
            )
        return WriteOptions(dry_run=self._dry_run(self.query.get("dryRun")), field_validation=validation)

    @staticmethod
    def _dry_run(value: str | list[str] | None) -> bool:
        values = [value] if isinstance(value, str) else list(value or [])
        values = [v for v in values if v]
        if any(v != "All" for v in values):
            raise ApiError(
                422,
                f'DryRun is invalid: dryRun: Unsupported value: {json.dumps(values)}: supported values: "All"',
                reason="Invalid",
            )
        return bool(values)

    def _send_written(self, code: int, obj: dict[str, Any], options: WriteOptions) -> None:
        headers = [("Warning", f"299 - {json.dumps(text)}") for text in options.warnings]
        self.send_json(code, obj, extra=headers)

    def _delete(self, namespace: str, name: str) -> None:
        body = self._json_body() if int(self.headers.get("Content-Length") or 0) else None
        opts = body if isinstance(body, dict) else {}
        propagation = self.query.get("propagationPolicy") or opts.get("propagationPolicy") or "Background"
        if opts.get("orphanDependents") is True:
            propagation = "Orphan"
        if propagation not in ("Foreground", "Background", "Orphan"):
            raise ApiError(
                422,
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{propagation}": supported values: "Foreground", "Background", "Orphan"',
                reason="Invalid",
            )
        dry_run = self._dry_run(self.query.get("dryRun")) or self._dry_run(opts.get("dryRun"))
        obj, gone = self.sandbox.store.delete(
            namespace, name, propagation=propagation, preconditions=opts.get("preconditions"), dry_run=dry_run
        )
        if not gone:
            self.send_json(200, obj)  # kept, with finalizers and a deletionTimestamp
            return
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
                    "uid": obj["metadata"]["uid"],
                },
            },
        )

    def _list_models(self, namespace: str | None) -> None:
        query = self.query
        raw_rv, match = query.get("resourceVersion") or "", query.get("resourceVersionMatch") or ""
        token = query.get("continue") or ""
        limit = int(query.get("limit") or 0)
        at: int | None = None
        start = ""
        if token:
            if raw_rv:
                raise ApiError(
                    400, "specifying resource version is not allowed when using continue", reason="BadRequest"
                )
            at, start = _decode_continue(token)
            try:
                self.sandbox.store.list_objects(None, at=at)
            except ApiError as err:
                if err.code != 410:
                    raise
                raise ApiError(
                    410,
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.",
                    reason="Expired",
                ) from None
        elif match == "Exact":
            if raw_rv in ("", "0"):
                raise ApiError(
                    422,
                    'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                    reason="Invalid",
                )
            at = int(raw_rv)
        elif match and match != "NotOlderThan":
            raise ApiError(
                422,
                f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""',
                reason="Invalid",
            )
        items, rv = self.sandbox.store.list_objects(namespace, self._predicate(), at=at)
        items = [i for i in items if _key(i) > start]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            meta["continue"] = _encode_continue(rv, _key(items[-1]))
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = rest
        self.send_json(
            200, {"apiVersion": "kubeai.org/v1", "kind": "ModelList", "metadata": meta, "items": items}
        )

    def _namespaces(self, name: str | None) -> None:
        if self.command != "GET":
            raise ApiError(405, "the sandbox only reads namespaces", reason="MethodNotAllowed")
        self._authorize(None, "get" if name else "list", "namespaces", "")
        existing = self.sandbox.config.namespaces

        def namespace(ns: str) -> dict[str, Any]:
            return {
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }

        if name is None:
            rv = str(self.sandbox.store.resource_version)
            items = [namespace(ns) for ns in sorted(existing)]
            self.send_json(
                200,
                {
                    "kind": "NamespaceList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": rv},
                    "items": items,
                },
            )
        elif name in existing:
            self.send_json(200, namespace(name))
        else:
            raise kube_errors.namespace_not_found(name)

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

    def _patch(self, namespace: str, name: str, sub: str | None, manager: str, options: WriteOptions) -> None:
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
                self._require_namespace(namespace)
            obj, created = store.apply(
                namespace, name, config, manager, force=_flag(self.query.get("force")), options=options
            )
            self._send_written(201 if created else 200, obj, options)
            return
        try:
            patch = json.loads(raw)
        except ValueError as err:
            raise ApiError(400, f"error decoding patch: {err}") from None
        # a custom resource has no Go struct to read patch strategies from: no strategic merge
        if content_type == "application/merge-patch+json":
            change = lambda current: merge_patch(current, patch)  # noqa: E731
        elif content_type == "application/json-patch+json":
            change = lambda current: _json_patch(current, patch)  # noqa: E731
        else:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                reason="UnsupportedMediaType",
            )
        if sub == "scale":
            current_scale = _scale_of(store.get(namespace, name), updating=True)
            scaled = self._set_scale(namespace, name, change(current_scale), manager, options)
            self._send_written(200, _scale_of(scaled), options)
            return
        self._send_written(200, store.mutate(namespace, name, change, manager, sub, options), options)

    def _set_scale(
        self, namespace: str, name: str, scale: dict[str, Any], manager: str, options: WriteOptions
    ) -> dict[str, Any]:
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

        return self.sandbox.store.mutate(namespace, name, change, manager, options=options)

    # -- watch -------------------------------------------------------------------------------

    def _watch(self, namespace: str | None) -> None:
        store, faults = self.sandbox.store, self.sandbox.faults
        predicate = self._predicate()
        raw_rv = self.query.get("resourceVersion") or ""
        start: int | None = int(raw_rv) if raw_rv not in ("", "0") else None
        initial_events = self._initial_events()
        if initial_events:
            start = None  # the current state first, then what follows (a "watch-list")
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
            if initial_events:
                self._event(
                    "BOOKMARK",
                    {
                        "kind": "Model",
                        "apiVersion": "kubeai.org/v1",
                        "metadata": {
                            "resourceVersion": str(last),
                            "annotations": {_INITIAL_EVENTS_END: "true"},
                        },
                    },
                )
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

    def _initial_events(self) -> bool:
        """Whether a watch asks for the current state first; refuses what a real server refuses."""
        query = self.query
        match = query.get("resourceVersionMatch") or ""
        wanted = query.get("sendInitialEvents")
        problems = []
        if wanted is None:
            if match:
                problems.append(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
                )
        else:
            if match != "NotOlderThan":
                problems.append(
                    f'resourceVersionMatch: Unsupported value: {json.dumps(match)}: supported values: "NotOlderThan"'
                )
            if not _flag(query.get("allowWatchBookmarks")):
                problems.append(
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
                )
        if problems:
            text = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
            raise ApiError(422, f'ListOptions.meta.k8s.io "" is invalid: {text}', reason="Invalid")
        return _flag(wanted)

    def _send_events(
        self, events: list[tuple[int, str, dict[str, Any]]], namespace: str | None, predicate: Any
    ) -> None:
        for _, kind, obj in events:
            if namespace in (None, obj["metadata"]["namespace"]) and predicate(obj):
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


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _encode_continue(rv: int, last: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": last + "\x00"}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data.get("v") != "meta.k8s.io/v1":
            raise ValueError(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            )
        return int(data["rv"]), str(data["start"]).removesuffix("\x00")
    except (ValueError, KeyError, TypeError, binascii.Error, AttributeError) as err:
        raise ApiError(400, f"continue key is not valid: {err}", reason="BadRequest") from None


_UNSET_REPLICAS = -(2**31)  # the API server's stand-in for an unset spec.replicas when updating a Scale


def _scale_of(obj: dict[str, Any], *, updating: bool = False) -> dict[str, Any]:
    """The Scale of a Model, by the CRD's paths (.spec.replicas, .status.replicas.all; no selector path).

    A GET with spec.replicas unset is an internal error on a real server; an update starts from
    a stand-in value that the new Scale must replace.
    """
    meta = obj["metadata"]
    replicas = obj.get("spec", {}).get("replicas")
    if replicas is None and not updating:
        why = 'the spec replicas field ".spec.replicas" does not exist'
        raise ApiError(500, f"Internal error occurred: {why}", details={"causes": [{"message": why}]})
    if replicas is None:
        replicas = _UNSET_REPLICAS
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": ((obj.get("status") or {}).get("replicas") or {}).get("all", 0)},
    }


def _json_patch(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    import jsonpatch

    try:
        return jsonpatch.apply_patch(copy.deepcopy(current), operations)  # type: ignore[no-any-return,unused-ignore]
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as err:
        raise ApiError(
            422, f"the server rejected our request due to an error in our request: {err}"
        ) from None
