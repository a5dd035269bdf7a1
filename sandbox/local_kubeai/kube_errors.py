"""Kubernetes ``Status`` error bodies, as the API server sends them."""

from __future__ import annotations

from typing import Any

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An API server refusal, rendered as a ``Status`` object.

    :param code: HTTP status.
    :param message: the human message.
    :param reason: the machine reason (defaults from the code; ``""`` for none, as the API server
        sends for an error it has no reason for, with code 500).
    :param details: ``StatusDetails`` (name, group, kind, causes).
    :param retry_after: seconds for a ``Retry-After`` header.
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = _REASONS.get(code, "Unknown") if reason is None else reason
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del body["reason"]
        if self.details:
            body["details"] = self.details
        return body


def not_found(name: str) -> ApiError:
    return ApiError(
        404,
        f'models.kubeai.org "{name}" not found',
        details={"name": name, "group": "kubeai.org", "kind": "models"},
    )


def already_exists(name: str) -> ApiError:
    return ApiError(
        409,
        f'models.kubeai.org "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": "kubeai.org", "kind": "models"},
    )


def conflict(name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on models.kubeai.org "{name}": {why}',
        details={"name": name, "group": "kubeai.org", "kind": "models"},
    )


def stale(name: str) -> ApiError:
    return conflict(
        name, "the object has been modified; please apply your changes to the latest version and try again"
    )


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404, f'namespaces "{namespace}" not found', details={"name": namespace, "kind": "namespaces"}
    )


def invalid(name: str, causes: list[Any]) -> ApiError:
    text = "; ".join(str(c) for c in causes)
    message = (
        f'Model.kubeai.org "{name}" is invalid: {text}'
        if len(causes) == 1
        else f'Model.kubeai.org "{name}" is invalid: [{", ".join(str(c) for c in causes)}]'
    )
    return ApiError(
        422,
        message,
        details={
            "name": name,
            "group": "kubeai.org",
            "kind": "Model",
            "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
        },
    )
