"""SpeechModelReadyTrigger: wait in the triggerer, watch-based, for a Model's replicas to be ready.

Nothing here blocks the triggerer's event loop. The Kubernetes clients a wait needs
(cncf-kubernetes' async hook, ``kubernetes_asyncio``) take seconds to import (0.7-2.7 s seen in a
triggerer, 3.3 s on a loaded 2-core machine), and the triggerer imports a trigger's module on its
event loop, so this module stays light and ``run()`` imports them in a worker thread first: other
triggers keep running meanwhile, and the wait itself then imports nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError, ReadinessTimeoutError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook


def load_cluster_clients() -> None:
    """Import everything a wait uses (blocking, seconds the first time: call it in a thread)."""
    import kubernetes_asyncio.client
    import kubernetes_asyncio.watch
    from airflow.providers.cncf.kubernetes.hooks import kubernetes

    from airflow_provider_kubeai_speech.hooks import async_cluster, cluster, kubeai

    del kubernetes_asyncio, kubernetes, async_cluster, cluster, kubeai


async def cluster_clients_loaded() -> None:
    """:func:`load_cluster_clients` off the event loop."""
    await asyncio.to_thread(load_cluster_clients)


class SpeechModelReadyTrigger(BaseTrigger):
    """Fires once a KubeAI Model has ``min_ready_replicas`` ready replicas (and its cache loaded).

    Every exit yields exactly one event::

        {"status": "success" | "error" | "timeout", "message": str,
         "name": str, "namespace": str, "ready_replicas": int}

    A success event also carries ``"model_status"``: the Model's status as
    :meth:`~airflow_provider_kubeai_speech.model_status.ModelStatus.to_dict` gives it, so the
    resumed task needs no second read.

    The deadline is absolute (``end_time``, epoch seconds), so a trigger moved to another
    triggerer keeps its original timeout.

    :param model_name: the Model.
    :param namespace: KubeAI's namespace (None: the connection's).
    :param kubeai_conn_id: the ``kubeai_speech`` connection.
    :param min_ready_replicas: how many ready replicas count as ready.
    :param timeout: seconds to wait (used when ``end_time`` is not given).
    :param end_time: absolute deadline (epoch seconds).
    :param missing_ok: keep waiting while the Model does not exist.
    :param delete_on_kill: delete the Model when a user kills the deferred task (Airflow >= 3.3).
    """

    def __init__(
        self,
        model_name: str,
        *,
        namespace: str | None = None,
        kubeai_conn_id: str = "kubeai_speech_default",
        min_ready_replicas: int = 1,
        timeout: float | None = None,
        end_time: float | None = None,
        missing_ok: bool = False,
        delete_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.namespace = namespace
        self.kubeai_conn_id = kubeai_conn_id
        self.min_ready_replicas = min_ready_replicas
        self.end_time = (
            end_time if end_time is not None else time.time() + (timeout if timeout is not None else 3600)
        )
        self.missing_ok = missing_ok
        self.delete_on_kill = delete_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_name": self.model_name,
                "namespace": self.namespace,
                "kubeai_conn_id": self.kubeai_conn_id,
                "min_ready_replicas": self.min_ready_replicas,
                "end_time": self.end_time,
                "missing_ok": self.missing_ok,
                "delete_on_kill": self.delete_on_kill,
            },
        )

    def _hook(self) -> KubeAISpeechHook:
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook  # loaded: no I/O

        return KubeAISpeechHook(self.kubeai_conn_id, namespace=self.namespace)

    def _event(self, status: str, message: str, namespace: str, ready: int, **more: Any) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "message": message,
                "name": self.model_name,
                "namespace": namespace,
                "ready_replicas": ready,
                **more,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        namespace = self.namespace or ""
        try:
            await cluster_clients_loaded()
            hook = self._hook()
            namespace = hook.namespace
            remaining = self.end_time - time.time()
            if remaining <= 0:
                raise ReadinessTimeoutError(
                    f"KubeAI Model {namespace}/{self.model_name}: the deadline passed before the trigger ran."
                )

            def progress(status: Any) -> None:
                self.log.info(
                    "Model %s/%s: %s",
                    namespace,
                    self.model_name,
                    status.describe(self.min_ready_replicas) if status else "does not exist yet",
                )

            status = await hook.async_wait_for_ready(
                self.model_name,
                self.min_ready_replicas,
                timeout=remaining,
                missing_ok=self.missing_ok,
                on_status=progress,
            )
            yield self._event(
                "success",
                f"Model {namespace}/{self.model_name} is ready: {status.describe(self.min_ready_replicas)}",
                namespace,
                status.ready_replicas,
                model_status=status.to_dict(),
            )
        except ReadinessTimeoutError as err:
            yield self._event("timeout", str(err), namespace, err.ready_replicas)
        except KubeAISpeechError as err:
            yield self._event("error", str(err), namespace, 0)
        except Exception as err:  # the event contract: every exit yields one event
            yield self._event("error", f"{type(err).__name__}: {err}", namespace, 0)

    async def on_kill(self) -> None:
        """A user killed the deferred task: delete the Model if the serve task created it and asked for that."""
        if self.delete_on_kill:
            await cluster_clients_loaded()
            hook = self._hook()
            self.log.info(
                "Task killed: deleting KubeAI Model %s/%s it created", hook.namespace, self.model_name
            )
            await hook.async_delete_model(self.model_name)
