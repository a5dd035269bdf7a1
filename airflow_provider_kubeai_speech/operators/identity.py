"""Airflow identity on Kubernetes objects: label values made safe, full values in annotations."""

from __future__ import annotations

import hashlib
import re
from typing import Any

ANNOTATION_PREFIX = "kubeai-speech.airflow.apache.org/"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(value: str) -> str:
    """A Kubernetes label value for any string: unsafe characters replaced, hashed when too long."""
    safe = _UNSAFE.sub("-", value).strip("-_.")
    if len(safe) > 63:
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        safe = f"{safe[:54].rstrip('-_.')}-{digest}"
    return safe


def _ids(context: Any) -> dict[str, str]:
    ti = context["ti"]
    ids = {"dag-id": ti.dag_id, "task-id": ti.task_id, "run-id": context["run_id"]}
    map_index = getattr(ti, "map_index", -1)  # -1: not a mapped task
    if isinstance(map_index, int) and map_index >= 0:
        ids["map-index"] = str(map_index)
    return ids


def airflow_labels_and_annotations(context: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Labels (dag, task, run ids and a mapped task's map index, made label-safe) and annotations
    (the exact ids, try number)."""
    ti = context["ti"]
    ids = _ids(context)
    labels = {f"airflow-{key}": label_value(str(value)) for key, value in ids.items()}
    labels["app.kubernetes.io/managed-by"] = "airflow-provider-kubeai-speech"
    annotations = {f"{ANNOTATION_PREFIX}{key}": str(value) for key, value in ids.items()}
    annotations[f"{ANNOTATION_PREFIX}try-number"] = str(getattr(ti, "try_number", 1))
    return labels, annotations


def created_by(model: dict[str, Any], context: Any) -> bool:
    """Whether a Model was created by this task in this run (an earlier try of it)."""
    annotations = model.get("metadata", {}).get("annotations") or {}
    ids = _ids(context)
    keys = ("dag-id", "task-id", "run-id", "map-index")
    return all(annotations.get(f"{ANNOTATION_PREFIX}{key}") == ids.get(key) for key in keys)
