"""One retry policy for Kubernetes API calls, used by the sync and the async Model clients.

Built on tenacity like cncf-kubernetes' ``generic_api_retry`` (Retry-After honoured on 429), with
what that decorator lacks here: 409 Conflict retried only on writes (a read never conflicts; a
server-side apply or merge patch may race another writer and is safe to send again), but not a
409 that is a verdict (AlreadyExists, a field-manager conflict of an apply without force), a 500 that
is the API server refusing the request itself (not a passing fault) given up at once, and a
configurable number of attempts.
"""

from __future__ import annotations

import json
import logging
import random
from typing import TYPE_CHECKING, Any

import tenacity

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Messages of a 500 that is a verdict on the request, not a fault: sending it again gets the same
#: answer (kube-apiserver answers 500 to a server-side apply with a field the CRD schema lacks).
PERMANENT_500_MARKERS = ("field not declared in schema", "failed to create typed patch object")
MAX_RETRY_AFTER = 60.0


def api_status(err: BaseException) -> int | None:
    """The HTTP status of a kubernetes (sync or asyncio) ``ApiException``; None for other errors."""
    from kubernetes.client import ApiException
    from kubernetes_asyncio.client import ApiException as AsyncApiException

    if isinstance(err, ApiException | AsyncApiException):
        return int(err.status or 0)
    return None


def _body(err: BaseException) -> dict[str, Any]:
    """The ``Status`` the API server answered with (``{"message": <raw body>}`` when not JSON)."""
    body = getattr(err, "body", None)  # ApiException.body: both clients set it, untyped
    if not body:
        return {}
    try:
        decoded = json.loads(body)
    except ValueError:
        return {"message": str(body)}
    return decoded if isinstance(decoded, dict) else {"message": str(body)}


def _is_verdict_409(status: dict[str, Any]) -> bool:
    """A 409 that sending again cannot change: the name is taken (``AlreadyExists``), or a
    server-side apply without force contradicts another manager's fields (``FieldManagerConflict``
    causes). A stale resourceVersion or a racing writer is a plain ``Conflict``, worth retrying."""
    if status.get("reason") == "AlreadyExists":
        return True
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    return any(isinstance(c, dict) and c.get("reason") == "FieldManagerConflict" for c in causes or ())


def is_transient_status(err: BaseException, status: int, *, write: bool) -> bool:
    """Whether an API answer with ``status`` is worth sending again."""
    if status == 500:
        message = str(_body(err).get("message", ""))
        return not any(marker in message for marker in PERMANENT_500_MARKERS)
    if status == 409:
        return write and not _is_verdict_409(_body(err))
    return status in TRANSIENT_STATUSES


def is_transient(err: BaseException, *, write: bool = False) -> bool:
    """Whether an ``ApiException`` (sync or asyncio) is worth retrying; False for other errors."""
    status = api_status(err)
    return status is not None and is_transient_status(err, status, write=write)


def retry_after(err: BaseException | None) -> float | None:
    """The server's Retry-After in seconds (capped), when it sent one."""
    headers = getattr(err, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(MAX_RETRY_AFTER, float(value)) if value is not None else None
    except ValueError:
        return None


def backoff(attempt: int, err: BaseException | None = None) -> float:
    """Exponential backoff with jitter, or the server's Retry-After."""
    hinted = retry_after(err)
    if hinted is not None:
        return hinted
    return float(min(10.0, 0.2 * 2 ** (attempt - 1)) + random.uniform(0, 0.2))


class _Wait(tenacity.wait.wait_base):
    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        return backoff(retry_state.attempt_number, outcome.exception() if outcome else None)


def retry_policy(
    what: str,
    *,
    attempts: int,
    write: bool,
    connection_errors: tuple[type[BaseException], ...],
) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying`` or ``tenacity.AsyncRetrying``.

    :param what: the call, for the log.
    :param attempts: tries in all.
    :param write: whether the call writes (409 Conflict is then retried).
    :param connection_errors: errors of a dropped or refused connection for this client.
    """

    def should_retry(err: BaseException) -> bool:
        status = api_status(err)
        if status is not None:
            return is_transient_status(err, status, write=write)
        return isinstance(err, connection_errors)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.info(
            "%s: transient Kubernetes API error (%s); retry %d in %.1f s",
            what,
            state.outcome.exception() if state.outcome else None,
            state.attempt_number,
            state.upcoming_sleep,
        )

    retry: Callable[[BaseException], bool] = should_retry
    return {
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": _Wait(),
        "retry": tenacity.retry_if_exception(retry),
        "reraise": True,
        "before_sleep": before_sleep,
    }
