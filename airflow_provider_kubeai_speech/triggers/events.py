"""The resuming side of SpeechModelReadyTrigger's event contract (no trigger imports: cheap at parse time)."""

from __future__ import annotations

from typing import Any

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError, ReadinessTimeoutError


def raise_for_event(event: dict[str, Any]) -> dict[str, Any]:
    """The resuming side of the event contract: return a success event, raise on anything else."""
    if event.get("status") == "timeout":
        raise ReadinessTimeoutError(
            event.get("message", "timed out"), ready_replicas=int(event.get("ready_replicas", 0))
        )
    if event.get("status") != "success":
        raise KubeAISpeechError(event.get("message", f"unexpected trigger event {event!r}"))
    return event
