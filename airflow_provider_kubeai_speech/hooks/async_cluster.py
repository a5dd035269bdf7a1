"""The async twin of :mod:`.cluster` on ``kubernetes_asyncio`` (for triggers in the triggerer)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_kubeai_speech.exceptions import ModelNotFoundError
from airflow_provider_kubeai_speech.hooks.cluster import ModelWatch, cluster_error
from airflow_provider_kubeai_speech.hooks.cluster_retry import is_transient, retry_policy
from airflow_provider_kubeai_speech.spec import GROUP, PLURAL, VERSION

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)


class AsyncModelClient:
    """Models in one namespace through a ``kubernetes_asyncio`` ``ApiClient``.

    :param api_client: ``kubernetes_asyncio.client.ApiClient``.
    :param namespace: KubeAI's namespace.
    :param attempts: tries per call for transient errors.
    """

    def __init__(self, api_client: Any, namespace: str, attempts: int = 6) -> None:
        from kubernetes_asyncio import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.attempts = attempts

    async def _call(self, what: str, fn: Callable[[], Any], *, write: bool = False) -> Any:
        import aiohttp
        import tenacity
        from kubernetes_asyncio.client import ApiException

        # aiohttp's dropped connections (a pooled keep-alive connection the server closed:
        # ServerDisconnectedError) and cut bodies (ClientPayloadError) are not OSErrors
        dropped = (OSError, asyncio.TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
        retrying = tenacity.AsyncRetrying(
            **retry_policy(what, attempts=self.attempts, write=write, connection_errors=dropped)
        )

        async def attempt() -> Any:  # fn returns an awaitable; tenacity awaits coroutine functions only
            return await fn()

        try:
            return await retrying(attempt)
        except ApiException as err:
            raise cluster_error(err, what) from err

    async def find(self, name: str) -> tuple[dict[str, Any] | None, str]:
        listed = await self._call(
            f"read Model {self.namespace}/{name}",
            lambda: self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, field_selector=f"metadata.name={name}"
            ),
        )
        items = listed.get("items") or []
        return (items[0] if items else None), str(listed["metadata"]["resourceVersion"])

    async def get(self, name: str) -> dict[str, Any]:
        model, _ = await self.find(name)
        if model is None:
            raise ModelNotFoundError(f"KubeAI Model {name!r} does not exist in namespace {self.namespace!r}.")
        return model

    async def delete(self, name: str, *, ignore_not_found: bool = True) -> bool:
        from airflow_provider_kubeai_speech.exceptions import KubeAIClusterError

        try:
            await self._call(
                f"delete Model {self.namespace}/{name}",
                lambda: self.api.delete_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name
                ),
                write=True,
            )
        except KubeAIClusterError as err:
            if err.status == 404 and ignore_not_found:
                return False
            raise
        return True

    async def wait_for(
        self,
        name: str,
        condition: Callable[[dict[str, Any] | None], bool],
        *,
        timeout: float,
        what: str,
        on_change: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> dict[str, Any] | None:
        """Watch one Model until ``condition`` holds (see the sync twin)."""
        from kubernetes_asyncio import watch
        from kubernetes_asyncio.client import ApiException

        cursor = ModelWatch(name, condition, timeout, on_change)
        if cursor.reset(*await self.find(name)):
            return cursor.model
        while True:
            if cursor.expired():
                raise TimeoutError(what)
            seconds = cursor.watch_seconds()
            try:
                async with watch.Watch().stream(
                    self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL,
                    **cursor.watch_arguments(), _request_timeout=seconds + 15,
                ) as stream:  # fmt: skip
                    async for event in stream:
                        if cursor.on_event(event["type"], event["object"]):
                            return cursor.model
                        if cursor.expired():
                            break
            except ApiException as err:
                if err.status != 410 and not is_transient(err):
                    raise cluster_error(err, what) from err
                await asyncio.sleep(cursor.pause_after_failure(err))
            except Exception as err:
                # a dropped stream: OSError/TimeoutError, or aiohttp's payload errors (not OSError)
                if (
                    not isinstance(err, OSError | asyncio.TimeoutError)
                    and type(err).__module__.split(".")[0] != "aiohttp"
                ):
                    raise
                log.info("%s: watch stream dropped (%s); reconnecting", what, type(err).__name__)
                await asyncio.sleep(cursor.pause_after_failure())
            if cursor.reset(*await self.find(name)):
                return cursor.model
