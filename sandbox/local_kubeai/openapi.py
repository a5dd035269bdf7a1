"""The OpenAPI documents a kube-apiserver publishes for the Model CRD (``/openapi/v2``, ``/openapi/v3``).

kubectl reads ``/openapi/v3/apis/kubeai.org/v1`` to learn that the server validates fields itself
(a PATCH operation of the Model's group-version-kind with a ``fieldValidation`` parameter) and
to validate client-side otherwise; other clients read the v2 (swagger) document. Both are built
from the CRD's own ``openAPIV3Schema``, as the API server builds them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from typing import Any

from local_kubeai.crd import model_crd

__all__ = ["openapi_v2", "openapi_v3_group", "openapi_v3_index"]

SERVER_VERSION = "v1.36.0"
_GVK = [{"group": "kubeai.org", "kind": "Model", "version": "v1"}]
_LIST_GVK = [{"group": "kubeai.org", "kind": "ModelList", "version": "v1"}]
_MODEL, _LIST = "org.kubeai.v1.Model", "org.kubeai.v1.ModelList"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
_BASE = "/apis/kubeai.org/v1"
_QUERY = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _schemas(ref: str) -> dict[str, Any]:
    model = copy.deepcopy(model_crd().schema)
    model.setdefault("properties", {})["metadata"] = {"$ref": f"{ref}{_META}"}
    model["x-kubernetes-group-version-kind"] = _GVK
    string = {"type": "string"}
    return {
        _MODEL: model,
        _LIST: {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": string,
                "kind": string,
                "items": {"type": "array", "items": {"$ref": f"{ref}{_MODEL}"}},
                "metadata": {"$ref": f"{ref}{_LIST_META}"},
            },
            "x-kubernetes-group-version-kind": _LIST_GVK,
        },
        _META: {
            "type": "object",
            "properties": {
                "name": string,
                "generateName": string,
                "namespace": string,
                "uid": string,
                "resourceVersion": string,
                "generation": {"type": "integer", "format": "int64"},
                "creationTimestamp": {"type": "string", "format": "date-time"},
                "deletionTimestamp": {"type": "string", "format": "date-time"},
                "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
                "labels": {"type": "object", "additionalProperties": string},
                "annotations": {"type": "object", "additionalProperties": string},
                "finalizers": {"type": "array", "items": string},
                "ownerReferences": {"type": "array", "items": {"type": "object"}},
                "managedFields": {"type": "array", "items": {"type": "object"}},
            },
        },
        _LIST_META: {
            "type": "object",
            "properties": {
                "continue": string,
                "remainingItemCount": {"type": "integer", "format": "int64"},
                "resourceVersion": string,
            },
        },
        _STATUS: {
            "type": "object",
            "properties": {"kind": string, "message": string, "code": {"type": "integer"}},
        },
    }


def _operations(v3: bool, ref: str) -> dict[str, Any]:
    def param(name: str, where: str = "query") -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "in": where, "uniqueItems": True}
        if where == "path":
            out["required"] = True
        if v3:
            out["schema"] = {"type": "string"}
        else:
            out["type"] = "string"
        return out

    def answer(schema: str) -> dict[str, Any]:
        target = {"$ref": f"{ref}{schema}"}
        if v3:
            return {"200": {"description": "OK", "content": {"application/json": {"schema": target}}}}
        return {"200": {"description": "OK", "schema": target}}

    def op(action: str, kind: str, schema: str, query: tuple[str, ...] = ()) -> dict[str, Any]:
        return {
            "operationId": f"{kind}KubeaiOrgV1NamespacedModel",
            "tags": ["kubeaiOrg_v1"],
            "parameters": [param(q) for q in query],
            "responses": answer(schema),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": _GVK[0],
        }

    namespace, name = param("namespace", "path"), param("name", "path")
    return {
        f"{_BASE}/namespaces/{{namespace}}/models": {
            "get": op("list", "list", _LIST, ("labelSelector", "fieldSelector", "limit", "continue")),
            "post": op("post", "create", _MODEL, _QUERY),
            "parameters": [namespace],
        },
        f"{_BASE}/namespaces/{{namespace}}/models/{{name}}": {
            "get": op("get", "read", _MODEL),
            "put": op("put", "replace", _MODEL, _QUERY),
            "patch": op("patch", "patch", _MODEL, (*_QUERY, "force")),
            "delete": op("delete", "delete", _STATUS, ("dryRun", "propagationPolicy")),
            "parameters": [name, namespace],
        },
        f"{_BASE}/models": {"get": op("list", "listForAllNamespaces", _LIST)},
    }


@cache
def openapi_v3_group() -> dict[str, Any]:
    """``/openapi/v3/apis/kubeai.org/v1``: an OpenAPI 3.0 document for Models."""
    ref = "#/components/schemas/"
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": _operations(True, ref),
        "components": {"schemas": _schemas(ref)},
    }


@cache
def openapi_v3_index() -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is, with a content hash as clients expect."""
    digest = hashlib.sha512(json.dumps(openapi_v3_group(), sort_keys=True).encode()).hexdigest().upper()
    return {"paths": {"apis/kubeai.org/v1": {"serverRelativeURL": f"/openapi/v3{_BASE}?hash={digest}"}}}


@cache
def openapi_v2() -> dict[str, Any]:
    """``/openapi/v2``: the swagger 2.0 document (JSON; a real server also offers protobuf)."""
    ref = "#/definitions/"
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": _operations(False, ref),
        "definitions": _schemas(ref),
    }
