"""KubeAI's controller and proxy, simulated: Models become pods, pods become ready, requests are routed.

- Desired replicas: ``spec.replicas`` (``minReplicas`` when unset), clamped to ``[min, max]`` when
  autoscaling is on.
- Pods become Ready ``startup_delay`` after creation; a Model with a ``cacheProfile`` first fills
  its cache (``status.cache.loaded``), then starts pods.
- A spec change rolls the pods with a surge of one.
- ``status.replicas.{all,ready}`` is written through the status subresource, only when it changes.
- Scale from zero, as KubeAI's proxy does it: a request for a Model whose ``spec.replicas`` is 0
  (autoscaling on, ``maxReplicas`` above 0) sets it to one at once and is held until a pod is Ready
  (the proxy has no server timeout; ``host_wait_timeout`` gives 504 after that long).
- The autoscaler, as KubeAI's ``internal/modelautoscaler`` does it: every ``autoscale_interval``
  seconds (KubeAI: 10 s), for each Model with autoscaling on that has at least one ready endpoint,
  it adds the Model's active requests (held ones included) to a moving average over
  ``autoscale_window`` seconds (KubeAI: 10 min, a window of ``ceil(window / interval)`` samples that
  starts at zeros), takes ``ceil(average / targetRequests)``, clamps it to ``[minReplicas,
  maxReplicas]``, and writes it to ``spec.replicas`` through the scale subresource. A scale-down
  happens only after ``ceil(scaleDownDelaySeconds / interval)`` consecutive scale-down decisions;
  a scale-up (or an unchanged decision) resets that count. A Model without ready endpoints is
  skipped, so the count survives a stay at zero: the first decision after a cold scale-up can
  scale it straight back down, which is why the provider holds capacity with ``minReplicas``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local_kubeai.kube_errors import ApiError
from local_kubeai.store import Key, ModelStore, now

if TYPE_CHECKING:
    from local_kubeai.config import SandboxConfig
    from local_kubeai.faults import FaultInjector

CONTROLLER = "kubeai-model-controller"
AUTOSCALER = "kubeai-autoscaler"
_ROLLING_FIELDS_EXCLUDED = (
    "replicas",
    "minReplicas",
    "maxReplicas",
    "autoscalingDisabled",
    "targetRequests",
    "scaleDownDelaySeconds",
    "loadBalancing",
)


class ModelNotFound(Exception):
    """No Model of that name in KubeAI's namespace."""


class NoHostInTime(Exception):
    """No replica became ready before ``host_wait_timeout``."""


@dataclass
class Pod:
    name: str
    spec_hash: str
    created: float
    ready_at: float
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_stamp: str = field(default_factory=now)
    in_flight: int = 0
    served: int = 0
    deleted: bool = False

    def ready(self, at: float) -> bool:
        return not self.deleted and at >= self.ready_at


@dataclass
class _Runtime:
    pods: list[Pod] = field(default_factory=list)
    first_seen: float = field(default_factory=time.monotonic)
    cache_ready_at: float | None = None
    last_activity: float = field(default_factory=time.monotonic)
    waiting: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    active_history: deque[float] | None = None
    consecutive_scale_downs: int = 0


class Controller:
    """Reconciles Models into simulated pods and routes requests to them.

    :param store: the Model store.
    :param config: sandbox settings (delays, concurrency, autoscaling window).
    :param faults: fault injection (``slow_start``).
    """

    def __init__(self, store: ModelStore, config: SandboxConfig, faults: FaultInjector) -> None:
        self._store = store
        self._config = config
        self._faults = faults
        self._cv = threading.Condition()
        self._runtime: dict[Key, _Runtime] = {}
        self._stop = threading.Event()
        self._next_tick = time.monotonic() + config.autoscale_interval
        self._thread = threading.Thread(target=self._loop, name="kubeai-sandbox-controller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        self._thread.join(timeout=5)

    # -- reconciliation ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
                if time.monotonic() >= self._next_tick:
                    self._next_tick = time.monotonic() + self._config.autoscale_interval
                    self.autoscale()
            except Exception:  # the controller must survive anything a test throws at it
                import logging

                logging.getLogger(__name__).exception("sandbox controller reconcile failed")
            with self._cv:
                self._cv.wait(timeout=self._next_wake())

    def _next_wake(self) -> float:
        at = time.monotonic()
        deadlines = [p.ready_at for rt in self._runtime.values() for p in rt.pods if not p.ready(at)]
        deadlines += [
            rt.cache_ready_at for rt in self._runtime.values() if rt.cache_ready_at and rt.cache_ready_at > at
        ]
        deadlines.append(self._next_tick)
        soonest = min(deadlines) - at
        return max(0.005, min(0.2, soonest))

    def reconcile(self) -> None:
        models, _ = self._store.list_objects(None)
        seen = set()
        for model in models:
            key = (model["metadata"]["namespace"], model["metadata"]["name"])
            seen.add(key)
            self._reconcile_model(key, model)
        with self._cv:
            for key in set(self._runtime) - seen:
                for pod in self._runtime.pop(key).pods:
                    pod.deleted = True
            self._cv.notify_all()

    def _reconcile_model(self, key: Key, model: dict[str, Any]) -> None:
        spec = model.get("spec", {})
        at = time.monotonic()
        with self._cv:
            rt = self._runtime.setdefault(key, _Runtime())
            rt.spec = spec
            desired = self.desired_replicas(spec)
            cache_loaded = self._cache_loaded(rt, spec, at)
            if cache_loaded is not False:
                self._manage_pods(key, rt, spec, desired, at)
            status: dict[str, Any] = {
                "replicas": {"all": len(rt.pods), "ready": sum(p.ready(at) for p in rt.pods)}
            }
            if cache_loaded is not None:
                status["cache"] = {"loaded": cache_loaded}
            self._cv.notify_all()
        if model.get("status") != status:
            self._write_status(key, status)

    @staticmethod
    def desired_replicas(spec: dict[str, Any]) -> int:
        minimum = int(spec.get("minReplicas") or 0)
        replicas = spec.get("replicas")
        desired = int(replicas) if replicas is not None else minimum
        if not spec.get("autoscalingDisabled", False):
            desired = max(desired, minimum)
            if spec.get("maxReplicas") is not None:
                desired = min(desired, int(spec["maxReplicas"]))
        return desired

    # -- the autoscaler ----------------------------------------------------------------------

    def autoscale(self) -> None:
        """One autoscaler pass over every Model (KubeAI's ``Autoscaler.Start`` loop body)."""
        models, _ = self._store.list_objects(None)
        interval = self._config.autoscale_interval
        window = max(1, math.ceil(self._config.autoscale_window / interval))
        at = time.monotonic()
        for model in models:
            spec = model.get("spec", {})
            if spec.get("autoscalingDisabled", False):
                continue
            key = (model["metadata"]["namespace"], model["metadata"]["name"])
            with self._cv:
                rt = self._runtime.get(key)
                if rt is None or not any(p.ready(at) for p in rt.pods):
                    continue  # KubeAI: "No endpoints found for model", skipped
                if rt.active_history is None or rt.active_history.maxlen != window:
                    rt.active_history = deque([0.0] * window, maxlen=window)
                rt.active_history.append(float(rt.waiting + sum(p.in_flight for p in rt.pods)))
                average = sum(rt.active_history) / window
                wanted = math.ceil(average / max(1, int(spec.get("targetRequests") or 100)))
                wanted = self._bounded(spec, wanted)
                existing = int(spec.get("replicas") or 0)
                if existing > wanted:
                    required = math.ceil(float(spec.get("scaleDownDelaySeconds") or 0) / interval)
                    if rt.consecutive_scale_downs < required:
                        rt.consecutive_scale_downs += 1
                        continue
                else:
                    rt.consecutive_scale_downs = 0
            if existing != wanted:
                self._set_replicas(key, wanted)

    @staticmethod
    def _bounded(spec: dict[str, Any], replicas: int) -> int:
        maximum = spec.get("maxReplicas")
        if maximum is not None and replicas > int(maximum):
            return int(maximum)
        return max(replicas, int(spec.get("minReplicas") or 0))

    def _scale_from_zero(self, key: Key, spec: dict[str, Any]) -> None:
        """KubeAI's ``ScaleAtLeastOneReplica``: the proxy's answer to a request for a Model at zero."""
        maximum = spec.get("maxReplicas")
        # an unset spec.replicas counts as minReplicas, as the model controller reads it
        if self.desired_replicas(spec) == 0 and (maximum is None or int(maximum) > 0):
            self._set_replicas(key, 1)

    def _cache_loaded(self, rt: _Runtime, spec: dict[str, Any], at: float) -> bool | None:
        if not spec.get("cacheProfile"):
            return None
        if rt.cache_ready_at is None:
            rt.cache_ready_at = at + self._config.cache_load_delay
        return at >= rt.cache_ready_at

    def _manage_pods(self, key: Key, rt: _Runtime, spec: dict[str, Any], desired: int, at: float) -> None:
        spec_hash = _rolling_hash(spec)
        current = [p for p in rt.pods if p.spec_hash == spec_hash]
        outdated = [p for p in rt.pods if p.spec_hash != spec_hash]
        if desired == 0:
            self._remove(rt, rt.pods[:])
            return
        if outdated:
            if len(current) < desired and len(rt.pods) < desired + 1:
                rt.pods.append(self._new_pod(key, rt, spec_hash, at))
            ready_new = sum(p.ready(at) for p in current)
            replaced = max(0, len(rt.pods) - desired)
            if ready_new and replaced:
                victims = sorted(outdated, key=lambda p: (p.ready(at), -p.created))[
                    : min(replaced, ready_new)
                ]
                self._remove(rt, victims)
            return
        while len(current) < desired:
            pod = self._new_pod(key, rt, spec_hash, at)
            rt.pods.append(pod)
            current.append(pod)
        if len(current) > desired:
            victims = sorted(current, key=lambda p: (p.ready(at), p.created), reverse=False)[
                : len(current) - desired
            ]
            self._remove(rt, victims)

    def _new_pod(self, key: Key, rt: _Runtime, spec_hash: str, at: float) -> Pod:
        suffix = uuid.uuid4().hex[:5]
        starting = sum(not p.ready(at) for p in rt.pods)  # pods of one scale-up come up one by one
        delay = (
            self._config.startup_delay
            + self._config.startup_stagger * starting
            + self._faults.faults.slow_start
        )
        return Pod(
            name=f"model-{key[1]}-{spec_hash[:10]}-{suffix}",
            spec_hash=spec_hash,
            created=at,
            ready_at=at + delay,
        )

    @staticmethod
    def _remove(rt: _Runtime, pods: list[Pod]) -> None:
        for pod in pods:
            pod.deleted = True
            rt.pods.remove(pod)

    def _set_replicas(self, key: Key, replicas: int) -> None:
        """Write ``spec.replicas`` as a scale-subresource update does (that field and nothing else)."""

        def change(obj: dict[str, Any]) -> dict[str, Any]:
            obj["spec"]["replicas"] = replicas
            obj["metadata"].pop("resourceVersion", None)
            return obj

        with contextlib.suppress(ApiError):  # deleted meanwhile: the next pass sees it
            self._store.mutate(*key, change, AUTOSCALER)

    def _write_status(self, key: Key, status: dict[str, Any]) -> None:
        def change(obj: dict[str, Any]) -> dict[str, Any]:
            obj["status"] = status
            obj["metadata"].pop("resourceVersion", None)
            return obj

        with contextlib.suppress(ApiError):
            self._store.mutate(*key, change, CONTROLLER, subresource="status")

    # -- the proxy side ----------------------------------------------------------------------

    def acquire(self, namespace: str, name: str) -> Pod:
        """Pick the least-loaded ready replica, scaling from zero and waiting as KubeAI's proxy does."""
        key = (namespace, name)
        model = self._store.find(namespace, name)
        if model is None:
            raise ModelNotFound(name)
        if not model.get("spec", {}).get("autoscalingDisabled", False):
            self._scale_from_zero(key, model.get("spec", {}))
        deadline = time.monotonic() + self._config.host_wait_timeout
        capacity = max(1, self._config.replica_concurrency)
        with self._cv:
            rt = self._runtime.setdefault(key, _Runtime())
            rt.waiting += 1
            rt.last_activity = time.monotonic()
            try:
                while True:
                    if key not in self._runtime and self._store.find(namespace, name) is None:
                        raise ModelNotFound(name)
                    at = time.monotonic()
                    ready = [p for p in rt.pods if p.ready(at) and p.in_flight < capacity]
                    if ready:
                        pod = min(ready, key=lambda p: (p.in_flight, p.created))
                        pod.in_flight += 1
                        return pod
                    if at >= deadline:
                        raise NoHostInTime(name)
                    self._cv.notify_all()
                    self._cv.wait(timeout=min(0.05, deadline - at))
            finally:
                rt.waiting -= 1

    def release(self, namespace: str, name: str, pod: Pod) -> None:
        with self._cv:
            pod.in_flight -= 1
            pod.served += 1
            rt = self._runtime.get((namespace, name))
            if rt is not None:
                rt.last_activity = time.monotonic()
            self._cv.notify_all()

    # -- pods, as the API shows them ---------------------------------------------------------

    def pod_objects(self, namespace: str) -> list[dict[str, Any]]:
        at = time.monotonic()
        with self._cv:
            out = []
            for (ns, model), rt in sorted(self._runtime.items()):
                if ns != namespace:
                    continue
                for pod in rt.pods:
                    ready = pod.ready(at)
                    out.append(
                        {
                            "apiVersion": "v1",
                            "kind": "Pod",
                            "metadata": {
                                "name": pod.name,
                                "namespace": ns,
                                "uid": pod.uid,
                                "creationTimestamp": pod.created_stamp,
                                "labels": {
                                    "app": "model",
                                    "model": model,
                                    "app.kubernetes.io/managed-by": "kubeai",
                                },
                            },
                            "spec": {
                                "containers": [
                                    {
                                        "name": "server",
                                        "image": rt.spec.get("image")
                                        or "fedirz/faster-whisper-server:latest-cpu",
                                    }
                                ]
                            },
                            "status": {
                                "phase": "Running" if ready else "Pending",
                                "podIP": "127.0.0.1",
                                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                            },
                        }
                    )
            return out


def _rolling_hash(spec: dict[str, Any]) -> str:
    relevant = {k: v for k, v in spec.items() if k not in _ROLLING_FIELDS_EXCLUDED}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
