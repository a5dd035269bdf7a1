"""SpeechModelReadyTrigger: wait in the triggerer, watch-based, for a Model's replicas to be ready.

Everything the trigger runs is imported here, at the module's import time: the triggerer imports
this module when it loads the trigger (DAG parsing never does), so ``run()`` imports nothing and
never blocks the triggerer's event loop on a first-use import (cncf-kubernetes' hook and
``kubernetes_asyncio`` take 0.7-2.7 s to import).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import kubernetes_asyncio.client
import kubernetes_asyncio.watch  # noqa: F401
from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook  # noqa: F401
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError, ReadinessTimeoutError
from airflow_provider_kubeai_speech.hooks import async_cluster, cluster  # noqa: F401
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


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
            hook = self._hook()
            self.log.info(
                "Task killed: deleting KubeAI Model %s/%s it created", hook.namespace, self.model_name
            )
            await hook.async_delete_model(self.model_name)
