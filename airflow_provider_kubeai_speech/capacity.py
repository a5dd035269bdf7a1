"""Capacity under KubeAI's autoscaler: holding replicas for a run, giving them back, and telling a
wait that nothing will satisfy from one that only takes time (pure functions, no I/O).

While autoscaling is on, KubeAI's autoscaler owns ``spec.replicas``: every interval it writes
``ceil(average active requests / targetRequests)``, clamped to ``[minReplicas, maxReplicas]``. A
``replicas`` a client applies lasts only until its next decision, so the only capacity a DAG can
count on is ``minReplicas``. The serve operator raises it to the replicas the run needs and records
the user's own minimum in an annotation; the scale teardown puts that minimum back.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

USER_MIN_REPLICAS_ANNOTATION = "kubeai-speech.airflow.apache.org/user-min-replicas"
"""The ``minReplicas`` the user asked for, kept while a run holds a higher one."""


def autoscaling_on(spec: Mapping[str, Any]) -> bool:
    return not spec.get("autoscalingDisabled", False)


def hold_capacity(manifest: Mapping[str, Any], needed: int) -> dict[str, Any]:
    """The manifest with ``minReplicas`` raised to ``needed`` while autoscaling is on.

    The user's ``minReplicas`` is recorded in :data:`USER_MIN_REPLICAS_ANNOTATION` either way, so
    the teardown knows what to restore even when nothing had to be raised.

    :param manifest: a Model manifest (``spec.minReplicas`` is the user's minimum).
    :param needed: the replicas the run waits for or asked for.
    """
    held = copy.deepcopy(dict(manifest))
    spec = held["spec"]
    user_min = int(spec.get("minReplicas") or 0)
    annotations = held.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[USER_MIN_REPLICAS_ANNOTATION] = str(user_min)
    if autoscaling_on(spec) and needed > user_min:
        spec["minReplicas"] = needed
        if spec.get("replicas") is not None and int(spec["replicas"]) < needed:
            spec["replicas"] = needed
    return held


def user_min_replicas(model: Mapping[str, Any]) -> int | None:
    """The user's ``minReplicas`` a serve task recorded on the Model, or None."""
    raw = ((model.get("metadata") or {}).get("annotations") or {}).get(USER_MIN_REPLICAS_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def min_replicas_after_teardown(model: Mapping[str, Any], replicas: int) -> int | None:
    """The ``minReplicas`` a scale teardown to ``replicas`` should set, or None to leave it.

    The user's recorded minimum comes back; a minimum above ``replicas`` is lowered to it, or the
    autoscaler would scale straight back up.
    """
    spec = model.get("spec") or {}
    current = int(spec.get("minReplicas") or 0)
    recorded = user_min_replicas(model)
    wanted = min(recorded if recorded is not None else current, replicas)
    return None if wanted == current else wanted


def capacity_shortfall(model: Mapping[str, Any], needed: int) -> str | None:
    """Why the Model will not get ``needed`` ready replicas without outside help, or None if it can.

    "Can" means the replicas the cluster is asked for reach ``needed``: with autoscaling off that
    is ``spec.replicas``; with it on, ``max(spec.replicas, minReplicas)`` bounded by ``maxReplicas``
    (the autoscaler may take ``spec.replicas`` back down, and then this says so).
    """
    spec = model.get("spec") or {}
    meta = model.get("metadata") or {}
    where = f"KubeAI Model {meta.get('namespace', '')}/{meta.get('name', '')}"
    replicas = spec.get("replicas")
    minimum = int(spec.get("minReplicas") or 0)
    maximum = spec.get("maxReplicas")
    if not autoscaling_on(spec):
        asked = int(replicas) if replicas is not None else minimum
        if asked >= needed:
            return None
        return (
            f"{where} will not get {needed} ready replica(s): autoscaling is disabled and spec.replicas "
            f"is {asked}, and nothing else scales it. Fix: replicas>={needed} on the serve task, or "
            f"min_ready_replicas<={asked}."
        )
    if maximum is not None and int(maximum) < needed:
        return (
            f"{where} will not get {needed} ready replica(s): maxReplicas is {maximum}. Fix: "
            f"scaling.max_replicas>={needed}, or min_ready_replicas<={maximum}."
        )
    asked = max(int(replicas or 0), minimum)
    if asked >= needed:
        return None
    return (
        f"{where} will not get {needed} ready replica(s): autoscaling is on, so KubeAI's autoscaler owns "
        f"spec.replicas (now {int(replicas or 0)}) and only minReplicas ({minimum}) is kept without "
        "traffic. Fix: serve it with ServeSpeechModelOperator, which holds minReplicas at the "
        "replicas the run needs until its ScaleSpeechModelOperator teardown; or set "
        f"scaling.min_replicas>={needed}; or, at minReplicas 0, wake it with a request "
        "(ServeSpeechModelOperator(warm_up=True)) and wait for 1 replica."
    )
