"""SpeechModelReadySensor: wait for a KubeAI Model's replicas to be ready (poke, reschedule or deferrable)."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_kubeai_speech.exceptions import CapacityNotProvidedError, KubeAISpeechError
from airflow_provider_kubeai_speech.operators.templating import is_templated
from airflow_provider_kubeai_speech.spec import require_model_name
from airflow_provider_kubeai_speech.triggers.events import raise_for_event

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
    from airflow_provider_kubeai_speech.model_status import ModelStatus


class SpeechModelReadySensor(BaseSensorOperator):
    """Succeeds when a KubeAI Model has ``min_ready_replicas`` ready replicas, and its cache is loaded
    when it has a cacheProfile. Pushes the Model's status to XCom.

    KubeAI sets no conditions on a Model: readiness is ``status.replicas.ready``. A wait that
    nothing will satisfy fails at once with the reason and the fix, in every mode: with
    autoscaling off, ``spec.replicas`` below ``min_ready_replicas``; with it on, ``maxReplicas``
    below it, or neither ``spec.replicas`` nor ``minReplicas`` reaching it (KubeAI's autoscaler
    owns ``spec.replicas`` and keeps only ``minReplicas`` without traffic). Note that the
    FasterWhisper engine loads weights on the first request; ``ServeSpeechModelOperator(warm_up=True)``
    makes that happen before a batch.

    :param model_name: the Model (templated; e.g. from the serve task's XCom).
    :param namespace: KubeAI's namespace (default: the connection's).
    :param min_ready_replicas: replicas that must be ready.
    :param missing_ok: keep waiting while the Model does not exist (default); else fail at once.
    :param kubeai_conn_id: the ``kubeai_speech`` connection.
    :param deferrable: wait in the triggerer (watch-based); ``timeout`` holds there too.
    """

    template_fields: Sequence[str] = ("model_name", "namespace", "min_ready_replicas", "kubeai_conn_id")
    ui_color = "#e6f2e6"

    def __init__(
        self,
        *,
        model_name: str,
        namespace: str | None = None,
        min_ready_replicas: int = 1,
        missing_ok: bool = True,
        kubeai_conn_id: str = "kubeai_speech_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.namespace = namespace
        self.min_ready_replicas = min_ready_replicas
        self.missing_ok = missing_ok
        self.kubeai_conn_id = kubeai_conn_id
        if not is_templated(model_name):
            require_model_name(model_name)  # a bad name is a DAG import error
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> KubeAISpeechHook:
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        return KubeAISpeechHook(self.kubeai_conn_id, namespace=self.namespace)

    def current_model(self) -> dict[str, Any] | None:
        """The Model object, or None while it does not exist (override to read it elsewhere)."""
        return self.hook.find_model(self.model_name)

    def current_status(self) -> ModelStatus | None:
        """The Model's status, or None while it does not exist."""
        from airflow_provider_kubeai_speech.model_status import ModelStatus

        model = self.current_model()
        return ModelStatus.from_model(model) if model is not None else None

    def is_ready(self, status: ModelStatus) -> bool:
        """The readiness rule (override for a stricter one)."""
        return status.is_ready(int(self.min_ready_replicas))

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from airflow_provider_kubeai_speech.capacity import capacity_shortfall
        from airflow_provider_kubeai_speech.model_status import ModelStatus

        model = self.current_model()
        status = ModelStatus.from_model(model) if model is not None else None
        if status is None or model is None:
            if not self.missing_ok:
                raise KubeAISpeechError(
                    f"KubeAI Model {self.hook.namespace}/{self.model_name} does not exist (missing_ok=False)."
                )
            self.log.info("KubeAI Model %s/%s does not exist yet", self.hook.namespace, self.model_name)
            return False
        self.log.info(
            "KubeAI Model %s/%s: %s",
            status.namespace,
            status.name,
            status.describe(int(self.min_ready_replicas)),
        )
        if self.is_ready(status):
            return PokeReturnValue(is_done=True, xcom_value=status.to_dict())
        shortfall = capacity_shortfall(model, int(self.min_ready_replicas))
        if shortfall is not None:
            raise CapacityNotProvidedError(shortfall)
        return False

    def execute(self, context: Context) -> Any:
        require_model_name(self.model_name)  # rendered now: refused before any cluster call
        with self.hook:
            return self._sense(context)

    def _sense(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger

        self.defer(
            trigger=SpeechModelReadyTrigger(
                self.model_name,
                namespace=self.hook.namespace,
                kubeai_conn_id=self.kubeai_conn_id,
                min_ready_replicas=int(self.min_ready_replicas),
                timeout=float(self.timeout),
                missing_ok=self.missing_ok,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fail on anything but success; the event holds the status."""
        self.log.info("%s", raise_for_event(event)["message"])
        status = event.get("model_status")
        if isinstance(status, dict):
            return status
        return {k: v for k, v in event.items() if k not in ("status", "message")}
