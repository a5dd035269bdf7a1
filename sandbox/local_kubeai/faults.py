"""Fault injection, settable at start-up and at run time through ``/sandbox/faults``."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    """What goes wrong, and how often.

    :param status_rates: transcription responses replaced by an error, e.g. ``{"503": 0.2}``.
    :param drop_rate: transcription connections closed without an answer.
    :param kube_status_rates: Kubernetes API responses replaced by an error, e.g. ``{"500": 0.1, "429": 0.1}``.
    :param kube_conflict_rate: writes answered 409 Conflict.
    :param retry_after: the ``Retry-After`` seconds sent with 429 and 503.
    :param watch_max_seconds: close every watch stream after this long (0 = never).
    :param watch_gone_rate: watches that start with resourceVersion answered 410 Gone.
    :param slow_start: extra seconds before a new pod becomes Ready.
    :param canned_answer: when set, every transcription (its upload read in full) is answered
        with this instead of a transcript, as a misbehaving gateway or proxy would: ``status``
        (default 200), ``content_type``, ``headers`` (e.g. ``{"Location": ...}``), ``body`` (text),
        ``repeat`` (the body sent that many times, never held whole), ``chunked`` (no
        Content-Length), ``bytes_per_second`` (a trickle), ``echo_headers`` (the request's headers
        appended to the body, as some error pages do).
    """

    status_rates: dict[str, float] = field(default_factory=dict)
    drop_rate: float = 0.0
    kube_status_rates: dict[str, float] = field(default_factory=dict)
    kube_conflict_rate: float = 0.0
    retry_after: float = 0.0
    watch_max_seconds: float = 0.0
    watch_gone_rate: float = 0.0
    slow_start: float = 0.0
    canned_answer: dict[str, Any] = field(default_factory=dict)


class FaultInjector:
    """Thread-safe draws against the current :class:`Faults`."""

    def __init__(self, faults: Faults | None = None, seed: int | None = None) -> None:
        self._faults = faults or Faults()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def faults(self) -> Faults:
        return self._faults

    def update(self, changes: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}; known: {sorted(known)}")
        with self._lock:
            self._faults = Faults(**{**asdict(self._faults), **changes})
            return self._faults

    def reset(self) -> None:
        with self._lock:
            self._faults = Faults()

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def pick_status(self, rates: dict[str, float]) -> int | None:
        if not rates:
            return None
        with self._lock:
            draw = self._random.random()
        total = 0.0
        for code, rate in rates.items():
            total += rate
            if draw < total:
                return int(code)
        return None

    def transcription_fault(self) -> int | str | None:
        """``"drop"``, an HTTP status to answer with, or None."""
        if self._chance(self._faults.drop_rate):
            return "drop"
        return self.pick_status(self._faults.status_rates)

    def kube_fault(self, *, write: bool) -> int | None:
        status = self.pick_status(self._faults.kube_status_rates)
        if status is None and write and self._chance(self._faults.kube_conflict_rate):
            return 409
        return status

    def watch_gone(self) -> bool:
        return self._chance(self._faults.watch_gone_rate)
