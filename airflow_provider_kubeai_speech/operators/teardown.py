"""Teardown: delete a Model, or scale it to zero and keep KubeAI's model cache."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_kubeai_speech.exceptions import (
    InvalidArgumentError,
    ModelNotFoundError,
)
from airflow_provider_kubeai_speech.operators.templating import is_templated
from airflow_provider_kubeai_speech.spec import require_model_name, whole_number

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook


def replica_count(field: str, value: Any, *, optional: bool, fix: str) -> int | None:
    """``value`` as a replica count (an int >= 0, or a string of one from a template), or a clear error.

    :param field: the argument's name, for the message.
    :param optional: None is allowed (and returned).
    :param fix: what to write instead.
    """
    try:
        return whole_number(value, optional=optional)
    except ValueError as err:
        raise InvalidArgumentError(
            f"ScaleSpeechModelOperator {field}={value!r}: a replica count must be a whole number >= 0"
            f"{' or None' if optional else ''}. Fix: {fix}."
        ) from err


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
        if not is_templated(model_name):
            require_model_name(model_name)  # a bad name is a DAG import error

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
        require_model_name(self.model_name)  # rendered now: refused before any cluster call
        with self.hook:
            return self._delete()

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

    As the teardown of a :class:`~airflow_provider_kubeai_speech.operators.serve.ServeSpeechModelOperator`
    (``scale.as_teardown(setups=serve)``) it gives back the capacity the serve task held: the
    user's ``minReplicas``, recorded on the Model by the serve task, comes back.

    :param model_name: the Model (templated).
    :param replicas: the replica count to set (a whole number >= 0; templated).
    :param min_replicas: ``minReplicas`` to set; when None, the user's minimum that the serve task
        recorded comes back, and a minimum above ``replicas`` is lowered to ``replicas`` (or the
        autoscaler would scale straight back up).
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
        self._counts()  # a bad count is a DAG import error; a templated one is checked once rendered

    def _counts(self) -> tuple[int | None, int | None]:
        replicas = None
        if not is_templated(self.replicas):
            replicas = replica_count(
                "replicas", self.replicas, optional=False, fix="replicas=0 (scale to zero, keep the cache)"
            )
        min_replicas = None
        if not is_templated(self.min_replicas):
            min_replicas = replica_count(
                "min_replicas",
                self.min_replicas,
                optional=True,
                fix="min_replicas=None (restore the minimum the serve task recorded), or e.g. min_replicas=0",
            )
        return replicas, min_replicas

    def execute(self, context: Context) -> dict[str, Any] | None:
        require_model_name(self.model_name)
        replicas, min_replicas = self._counts()  # rendered now: refused before any cluster call
        assert replicas is not None
        with self.hook:
            return self._scale(replicas, min_replicas)

    def _scale(self, replicas: int, min_replicas: int | None) -> dict[str, Any] | None:
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
