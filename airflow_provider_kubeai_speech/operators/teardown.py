"""Teardown: delete a Model, or scale it to zero and keep KubeAI's model cache."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_kubeai_speech.exceptions import ModelNotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook


class _ModelOperator(BaseOperator):
    """Shared arguments of the teardown operators (``trigger_rule`` defaults to ``all_done``)."""

    ui_color = "#f3e3e3"

    def __init__(
        self,
        *,
        model_name: str,
        namespace: str | None = None,
        kubeai_conn_id: str = "kubeai_speech_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.model_name = model_name
        self.namespace = namespace
        self.kubeai_conn_id = kubeai_conn_id

    @cached_property
    def hook(self) -> KubeAISpeechHook:
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        return KubeAISpeechHook(self.kubeai_conn_id, namespace=self.namespace)


class DeleteSpeechModelOperator(_ModelOperator):
    """Delete a KubeAI Model (its pods and its model cache go with it).

    Meant as a teardown step: ``trigger_rule`` defaults to ``"all_done"``.

    :param model_name: the Model (templated; e.g. from the serve task's XCom).
    :param namespace: KubeAI's namespace (default: the connection's).
    :param ignore_not_found: a missing Model is not an error.
    :param wait_for_deletion: wait until the Model is gone.
    :param timeout: seconds to wait for the deletion.
    :param kubeai_conn_id: the ``kubeai_speech`` connection.
    """

    template_fields: Sequence[str] = ("model_name", "namespace", "kubeai_conn_id")

    def __init__(
        self,
        *,
        ignore_not_found: bool = True,
        wait_for_deletion: bool = True,
        timeout: float = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ignore_not_found = ignore_not_found
        self.wait_for_deletion = wait_for_deletion
        self.timeout = timeout

    def execute(self, context: Context) -> bool:
        try:
            return self._delete()
        finally:
            self.hook.close()

    def _delete(self) -> bool:
        existed = self.hook.delete_model(
            self.model_name,
            ignore_not_found=self.ignore_not_found,
            wait=self.wait_for_deletion,
            timeout=self.timeout,
        )
        self.log.info(
            "KubeAI Model %s/%s %s",
            self.hook.namespace,
            self.model_name,
            "deleted" if existed else "was already absent",
        )
        return existed


class ScaleSpeechModelOperator(_ModelOperator):
    """Scale a KubeAI Model, by default to zero: no replicas run, KubeAI keeps the model cache,
    and the next request scales it up again (autoscaling permitting).

    Meant as a teardown step: ``trigger_rule`` defaults to ``"all_done"``.

    :param model_name: the Model (templated).
    :param replicas: the replica count to set.
    :param min_replicas: ``minReplicas`` to set; when None and the Model's is above ``replicas``,
        it is lowered to ``replicas`` (or the autoscaler would scale straight back up).
    :param ignore_not_found: a missing Model is not an error.
    :param namespace: KubeAI's namespace (default: the connection's).
    :param kubeai_conn_id: the ``kubeai_speech`` connection.
    """

    template_fields: Sequence[str] = ("model_name", "namespace", "kubeai_conn_id", "replicas", "min_replicas")

    def __init__(
        self,
        *,
        replicas: int = 0,
        min_replicas: int | None = None,
        ignore_not_found: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.replicas = replicas
        self.min_replicas = min_replicas
        self.ignore_not_found = ignore_not_found

    def execute(self, context: Context) -> dict[str, Any] | None:
        try:
            return self._scale()
        finally:
            self.hook.close()

    def _scale(self) -> dict[str, Any] | None:
        replicas = int(self.replicas)
        min_replicas = None if self.min_replicas is None else int(self.min_replicas)
        try:
            model = self.hook.scale_model(self.model_name, replicas, min_replicas=min_replicas)
        except ModelNotFoundError:
            if not self.ignore_not_found:
                raise
            self.log.info(
                "KubeAI Model %s/%s does not exist; nothing to scale", self.hook.namespace, self.model_name
            )
            return None
        spec = model.get("spec", {})
        self.log.info(
            "KubeAI Model %s/%s scaled to %s replica(s) (minReplicas %s)",
            self.hook.namespace,
            self.model_name,
            spec.get("replicas"),
            spec.get("minReplicas"),
        )
        return {
            "name": self.model_name,
            "namespace": self.hook.namespace,
            "replicas": spec.get("replicas"),
            "min_replicas": spec.get("minReplicas"),
        }
