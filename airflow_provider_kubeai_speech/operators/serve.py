"""ServeSpeechModelOperator: deploy (or update) a KubeAI speech-to-text Model and wait until it serves."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_provider_kubeai_speech.capacity import autoscaling_on, hold_capacity
from airflow_provider_kubeai_speech.exceptions import InvalidArgumentError, KubeAISpeechError
from airflow_provider_kubeai_speech.operators.templating import KeepTrailingNewlines, is_templated
from airflow_provider_kubeai_speech.spec import (
    SpeechModelSpec,
    SpeechModelSpecError,
    build_speech_model_spec,
    refuse_unsupported,
    whole_number,
)
from airflow_provider_kubeai_speech.triggers.events import raise_for_event

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

IfExists = Literal["update", "skip", "fail"]
STATE_KEY = "kubeai_speech_model"
#: the operator's arguments that make the spec: the spec's own fields, declared once, there
_SPEC_FIELDS = tuple(SpeechModelSpec.model_fields)


class ServeSpeechModelOperator(KeepTrailingNewlines, BaseOperator):
    """Serve a speech-to-text model with KubeAI: apply a ``Model`` and wait for ready replicas.

    Takes every parameter of DigitalHub's ``kubeai-speech`` function kind (see
    :class:`~airflow_provider_kubeai_speech.spec.SpeechModelSpec`), refusing with the reason the ones
    KubeAI cannot express per model. Idempotent: a retry or re-run applies the same Model again
    (server-side apply), so it never creates a duplicate or hits 409 AlreadyExists.

    Under KubeAI's autoscaler (autoscaling on), ``spec.replicas`` belongs to the autoscaler: a
    ``replicas`` applied here lasts only until its next decision. So, with ``hold_capacity`` (the
    default), the Model is applied with ``minReplicas`` raised to the replicas this run needs
    (``max(replicas, min_ready_replicas)``) and the user's own minimum recorded in the annotation
    ``kubeai-speech.airflow.apache.org/user-min-replicas``; a
    :class:`~airflow_provider_kubeai_speech.operators.teardown.ScaleSpeechModelOperator` teardown
    restores it. A wait for replicas that nothing will provide fails at once with the reason.

    Returns to XCom ``{"name", "namespace", "model", "base_url", "ready_replicas"}``.

    :param model_name: the KubeAI Model name (DNS-1123 label, at most 40 characters).
    :param url: where the weights are (``hf://owner/repo``, ``s3://``, ``pvc://``, ``gs://``/``oss://``
        with a cache profile).
    :param image: model server image.
    :param adapters: refused when non-empty (KubeAI supports adapters only with vLLM).
    :param env: environment variables (a map).
    :param envs: DigitalHub's ``[{"name", "value"}]`` form, merged into ``env``.
    :param args: model server arguments.
    :param files: ``[{"path", "content"}]`` written into the server container (at most 10).
    :param cache_profile: KubeAI cache profile (immutable once set).
    :param profile: resource profile name (``cpu`` by default).
    :param processors: resource profile count: ``resourceProfile = "<profile>:<processors>"``.
    :param replicas: desired replicas.
    :param scaling: ``{replicas, min_replicas, max_replicas, autoscaling_disabled, target_request(s),
        scale_down_delay_seconds, load_balancing{strategy, prefix_hash{...}}}``.
    :param secrets: Secret names exposed to the server through ``envFrom``.
    :param labels: Kubernetes labels (a map, or DigitalHub's list of ``key=value`` strings).
    :param description: free text, stored as an annotation.
    :param priority_class_name: KubeAI ``priorityClassName``.
    :param name: DigitalHub's function name, used as ``model_name`` when that is not given.
    :param kind: DigitalHub's function kind; ``"kubeai-speech"`` if given.
    :param action: DigitalHub's task action; ``"serve"`` if given.
    :param namespace: KubeAI's namespace (default: the connection's).
    :param kubeai_conn_id: the ``kubeai_speech`` connection.
    :param if_exists: when the Model already exists: ``"update"`` (apply), ``"skip"`` (leave it as
        it is) or ``"fail"``. A Model created by an earlier try of this same task counts as this task's.
    :param wait_for_ready: wait until ``min_ready_replicas`` replicas are ready.
    :param min_ready_replicas: replicas that must be ready.
    :param warm_up: after readiness, transcribe a short clip so the lazily loaded weights are in memory.
    :param warm_up_audio: the clip (default: one bundled with the provider).
    :param hold_capacity: while autoscaling is on, hold ``minReplicas`` at the replicas this run
        needs until the teardown gives them back. False leaves ``minReplicas`` as given: the
        autoscaler then decides, and at ``minReplicas`` 0 the warm-up request (``warm_up=True``)
        wakes the model, KubeAI's proxy holding it until a replica is ready.
    :param timeout: seconds to wait for readiness, in both blocking and deferrable modes.
    :param poll_interval: seconds between progress lines while waiting (the wait itself is a watch).
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    :param delete_on_kill: when the task is killed, delete the Model if this task created it.
    """

    template_fields: Sequence[str] = (
        *_SPEC_FIELDS,
        "namespace",
        "kubeai_conn_id",
        "min_ready_replicas",
        "timeout",
        "warm_up_audio",
    )
    template_fields_renderers = {"env": "json", "scaling": "json", "files": "json", "labels": "json"}
    ui_color = "#d7e9f7"

    def __init__(
        self,
        *,
        model_name: str | None = None,
        url: str,
        image: str | None = None,
        adapters: list[dict[str, str]] | None = None,
        env: dict[str, str] | None = None,
        envs: list[dict[str, str]] | None = None,
        args: list[str] | None = None,
        files: list[dict[str, str]] | None = None,
        cache_profile: str | None = None,
        profile: str = "cpu",
        processors: int = 1,
        replicas: int | None = None,
        scaling: dict[str, Any] | None = None,
        secrets: list[str] | None = None,
        labels: dict[str, str] | list[str] | None = None,
        description: str | None = None,
        priority_class_name: str | None = None,
        namespace: str | None = None,
        kubeai_conn_id: str = "kubeai_speech_default",
        if_exists: IfExists = "update",
        wait_for_ready: bool = True,
        min_ready_replicas: int = 1,
        warm_up: bool = False,
        warm_up_audio: str | None = None,
        hold_capacity: bool = True,
        timeout: float = 1800,
        poll_interval: float = 30,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        delete_on_kill: bool = True,
        node_selector: Any = None,
        volumes: Any = None,
        resources: Any = None,
        affinity: Any = None,
        tolerations: Any = None,
        service_type: Any = None,
        service_name: Any = None,
        name: str | None = None,
        kind: str | None = None,
        action: str | None = None,
        project: Any = None,
        uuid: Any = None,
        embedded: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        refuse_unsupported(
            {
                "node_selector": node_selector,
                "volumes": volumes,
                "resources": resources,
                "affinity": affinity,
                "tolerations": tolerations,
                "service_type": service_type,
                "service_name": service_name,
                "project": project,
                "uuid": uuid,
                "embedded": embedded,
            }
        )
        if if_exists not in ("update", "skip", "fail"):
            raise InvalidArgumentError(f"if_exists={if_exists!r}: choose 'update', 'skip' or 'fail'.")
        self.model_name = model_name
        self.url = url
        self.image = image
        self.adapters = adapters
        self.env = env
        self.envs = envs
        self.args = args
        self.files = files
        self.cache_profile = cache_profile
        self.profile = profile
        self.processors = processors
        self.replicas = replicas
        self.scaling = scaling
        self.secrets = secrets
        self.labels = labels
        self.description = description
        self.priority_class_name = priority_class_name
        self.name = name
        self.kind = kind
        self.action = action
        self.namespace = namespace
        self.kubeai_conn_id = kubeai_conn_id
        self.if_exists = if_exists
        self.wait_for_ready = wait_for_ready
        self.min_ready_replicas = min_ready_replicas
        self.warm_up = warm_up
        self.warm_up_audio = warm_up_audio
        self.hold_capacity = hold_capacity
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.delete_on_kill = delete_on_kill
        self._created = False
        self._killed = threading.Event()
        if not any(is_templated(getattr(self, name)) for name in (*_SPEC_FIELDS, "min_ready_replicas")):
            self.check_capacity(self.speech_model_spec())  # a bad spec is a DAG import error

    # -- pieces --------------------------------------------------------------------------------

    def speech_model_spec(self) -> SpeechModelSpec:
        """The validated spec from the (rendered) arguments."""
        params = {name: getattr(self, name) for name in _SPEC_FIELDS}
        return build_speech_model_spec({k: v for k, v in params.items() if v is not None})

    def needed_replicas(self, spec: SpeechModelSpec) -> int:
        """The replicas this run needs: those it asks for, and those it waits for."""
        waited = self._min_ready() if self.wait_for_ready else 0
        return max(int(spec.desired_replicas or 0), waited)

    def _min_ready(self) -> int:
        value = self.min_ready_replicas
        try:
            number = whole_number(value, minimum=1)
        except ValueError as err:
            raise SpeechModelSpecError(
                [("min_ready_replicas", f"min_ready_replicas={value!r} {err}. Fix: an integer >= 1, e.g. 1.")]
            ) from err
        assert number is not None
        return number

    def check_capacity(self, spec: SpeechModelSpec) -> None:
        """Refuse, before any cluster call, a wait that this spec can never satisfy."""
        if not self.wait_for_ready:
            return
        needed = self._min_ready()
        scaling = spec.scaling
        if scaling is not None and scaling.autoscaling_disabled:
            replicas = int(spec.desired_replicas or 0)
            if replicas < needed:
                raise SpeechModelSpecError(
                    [
                        (
                            "min_ready_replicas",
                            f"min_ready_replicas={needed} but autoscaling is disabled and replicas={replicas}: "
                            f"nothing would start the other replicas. Fix: replicas={needed}, or "
                            f"min_ready_replicas={replicas or 1}.",
                        )
                    ]
                )
        elif scaling is not None and scaling.max_replicas is not None and scaling.max_replicas < needed:
            raise SpeechModelSpecError(
                [
                    (
                        "min_ready_replicas",
                        f"min_ready_replicas={needed} is above scaling.max_replicas={scaling.max_replicas}: "
                        f"KubeAI never runs more than maxReplicas. Fix: max_replicas>={needed}, or "
                        f"min_ready_replicas<={scaling.max_replicas}.",
                    )
                ]
            )

    @cached_property
    def hook(self) -> KubeAISpeechHook:
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        return KubeAISpeechHook(self.kubeai_conn_id, namespace=self.namespace)

    # -- execution -----------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        with self.hook:  # closed on success, failure and deferral alike
            return self._serve(context)

    def _serve(self, context: Context) -> dict[str, Any]:
        from airflow_provider_kubeai_speech.operators.identity import (
            airflow_labels_and_annotations,
            created_by,
        )

        self.min_ready_replicas = self._min_ready()  # a rendered "2" is the number 2 from here on
        spec = self.speech_model_spec()  # every input error before the first cluster call
        self.check_capacity(spec)
        self.model_name = spec.model_name  # DigitalHub's ``name`` when model_name was not given
        # The result (base_url) and the warm-up need the endpoint's settings: a bad one (a token
        # over plain http, a missing ca_bundle) fails now, not after the Model is made and waited for.
        self.hook.base_url  # noqa: B018
        labels, annotations = airflow_labels_and_annotations(context)
        manifest = self.hook.render_manifest(spec, labels=labels, annotations=annotations)
        user_min = manifest["spec"].get("minReplicas", 0)
        if self.hold_capacity:
            manifest = hold_capacity(manifest, self.needed_replicas(spec))
        name, namespace = spec.model_name, self.hook.namespace
        existing = self.hook.find_model(name)
        ours = existing is not None and created_by(existing, context) and self._recorded_creation(context)
        if existing is None:
            self.log.info(
                "Creating KubeAI Model %s/%s (%s, %s)", namespace, name, spec.url, spec.resource_profile
            )
            self._created = True
            self._record(context, created=True)
            self.hook.apply_model(manifest)
        elif self.if_exists == "fail" and not ours:
            raise KubeAISpeechError(
                f"KubeAI Model {namespace}/{name} already exists and if_exists='fail'. Fix: if_exists='update' to apply "
                "this spec to it, 'skip' to use it as it is, or choose another model_name."
            )
        elif self.if_exists == "skip" and not ours:
            self.log.info("KubeAI Model %s/%s exists; if_exists='skip' leaves it as it is", namespace, name)
        else:
            self._created = ours
            applied = self.hook.apply_model(manifest, existing=existing)
            changed = applied["metadata"]["resourceVersion"] != existing["metadata"]["resourceVersion"]
            self.log.info(
                "KubeAI Model %s/%s %s", namespace, name, "updated" if changed else "already up to date"
            )
        if self.if_exists != "skip" or existing is None or ours:
            self._log_hold(manifest, user_min)
        if not self.wait_for_ready:
            return self._result(self.hook.model_status(name).ready_replicas)
        woken = self._wake_by_request(name)
        if self.deferrable:
            self._defer_until_ready(name)
        status = self._wait_blocking(name)
        return self._finish(status.ready_replicas, warmed=woken)

    def _log_hold(self, manifest: dict[str, Any], user_min: int) -> None:
        if manifest["spec"]["minReplicas"] == user_min:
            return
        self.log.info(
            "Autoscaling is on: minReplicas held at %s for this run (the teardown restores %s)",
            manifest["spec"]["minReplicas"],
            user_min,
        )
        if not self._has_teardown():
            self.log.warning(
                "No teardown follows %s: minReplicas stays at %s after this run (and the replicas keep "
                "running) until something restores %s. Fix: add ScaleSpeechModelOperator(...).as_teardown("
                "setups=<this task>), or hold_capacity=False.",
                self.task_id,
                manifest["spec"]["minReplicas"],
                user_min,
            )

    def _has_teardown(self) -> bool:
        try:
            relatives = self.get_flat_relatives(upstream=False)
        except Exception:  # not in a DAG (a bare operator in a test)
            return False
        return any(getattr(task, "is_teardown", False) for task in relatives)

    def _wake_by_request(self, name: str) -> bool:
        """At minReplicas 0 under autoscaling, wake the Model the KubeAI way: with a request.

        KubeAI scales a Model at zero to one replica when a request comes, and its proxy holds the
        request until that replica is ready; the warm-up clip is that request.
        """
        model = self.hook.find_model(name)
        spec = (model or {}).get("spec", {})
        if not (self.warm_up and model is not None and autoscaling_on(spec)):
            return False
        if int(spec.get("minReplicas") or 0) > 0 or self.hook.model_status(name).ready_replicas > 0:
            return False
        self.log.info("Model %s is at minReplicas 0: waking it with the warm-up request", name)
        self._warm_up()
        return True

    def _wait_blocking(self, name: str) -> Any:
        last_log = [0.0]

        def progress(status: Any) -> None:
            if time.monotonic() - last_log[0] >= self.poll_interval or (
                status and status.is_ready(self.min_ready_replicas)
            ):
                last_log[0] = time.monotonic()
                self.log.info(
                    "Model %s: %s", name, status.describe(self.min_ready_replicas) if status else "absent"
                )

        return self.hook.wait_for_ready(
            name, self.min_ready_replicas, float(self.timeout), on_status=progress, stop=self._killed.is_set
        )

    def _defer_until_ready(self, name: str) -> None:
        from airflow_provider_kubeai_speech.triggers.model_ready import SpeechModelReadyTrigger

        status = self.hook.model_status(name)
        if status.is_ready(self.min_ready_replicas):
            return
        self.defer(
            trigger=SpeechModelReadyTrigger(
                name,
                namespace=self.hook.namespace,
                kubeai_conn_id=self.kubeai_conn_id,
                min_ready_replicas=int(self.min_ready_replicas),
                timeout=float(self.timeout),
                delete_on_kill=self.delete_on_kill and self._created,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fail on anything but success."""
        self.log.info("%s", raise_for_event(event)["message"])
        with self.hook:
            return self._finish(int(event["ready_replicas"]))

    def _finish(self, ready_replicas: int, *, warmed: bool = False) -> dict[str, Any]:
        if self.warm_up and not warmed:
            self._warm_up()
        return self._result(ready_replicas)

    def _warm_up(self) -> None:
        started = time.monotonic()
        if self.warm_up_audio:
            result = self.hook.transcribe(str(self.model_name), self.warm_up_audio)
        else:
            clip = resources.files("airflow_provider_kubeai_speech").joinpath("data/warmup.wav").read_bytes()
            result = self.hook.transcribe(str(self.model_name), clip, filename="warmup.wav")
        self.log.info(
            "Warm-up transcription took %.1f s (%d attempt(s)): %r",
            time.monotonic() - started,
            result.attempts,
            result.text[:80],
        )

    def _result(self, ready_replicas: int) -> dict[str, Any]:
        return {
            "name": self.model_name,
            "namespace": self.hook.namespace,
            "model": self.model_name,
            "base_url": self.hook.base_url,
            "ready_replicas": ready_replicas,
        }

    # -- retries and kills ---------------------------------------------------------------------

    def _record(self, context: Context, *, created: bool) -> None:
        store = context.get("task_state_store")  # Airflow >= 3.3: survives worker crashes and retries
        if store is not None:
            store.set(
                STATE_KEY, {"name": self.model_name, "namespace": self.hook.namespace, "created": created}
            )

    def _recorded_creation(self, context: Context) -> bool:
        store = context.get("task_state_store")
        if store is None:
            return True  # older Airflow: the run/task annotations alone decide
        recorded = store.get(STATE_KEY)
        return (
            isinstance(recorded, dict)
            and recorded.get("name") == self.model_name
            and bool(recorded.get("created"))
        )

    def on_kill(self) -> None:
        self._killed.set()
        if self.delete_on_kill and self._created:
            self.log.info("Task killed: deleting KubeAI Model %s it created", self.model_name)
            self.hook.delete_model(str(self.model_name))
