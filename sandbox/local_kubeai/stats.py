"""Counters the sandbox reports at ``/sandbox/stats``: what arrived, what was answered."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Thread-safe counters of transcription and Kubernetes API traffic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.transcriptions = 0
            self.outcomes: Counter[str] = Counter()
            self.bytes_received = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.completed_by_digest: Counter[str] = Counter()
            self.kube_requests: Counter[str] = Counter()
            self.watches = 0

    def request_started(self) -> None:
        with self._lock:
            self.transcriptions += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def request_finished(self, outcome: str, *, received: int = 0, digest: str | None = None) -> None:
        with self._lock:
            self.in_flight -= 1
            self.outcomes[outcome] += 1
            self.bytes_received += received
            if digest and outcome == "200":
                self.completed_by_digest[digest] += 1

    def kube_request(self, verb: str) -> None:
        with self._lock:
            self.kube_requests[verb] += 1
            if verb == "watch":
                self.watches += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "transcriptions": self.transcriptions,
                "outcomes": dict(self.outcomes),
                "bytes_received": self.bytes_received,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "completed_by_digest": dict(self.completed_by_digest),
                "kube_requests": dict(self.kube_requests),
                "watches": self.watches,
            }
