"""What a KubeAI Model's status says about readiness (pure functions, no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class ModelStatus:
    """A Model's readiness, read from its ``status`` (KubeAI sets no conditions).

    :param name: Model name.
    :param namespace: its namespace.
    :param desired_replicas: ``spec.replicas`` (None when unset).
    :param all_replicas: ``status.replicas.all`` (pods labelled ``model=<name>``).
    :param ready_replicas: ``status.replicas.ready``.
    :param cache_loaded: ``status.cache.loaded``; None when the Model has no cacheProfile.
    :param resource_version: the object's resourceVersion.
    """

    name: str
    namespace: str
    desired_replicas: int | None
    all_replicas: int
    ready_replicas: int
    cache_loaded: bool | None
    resource_version: str

    @classmethod
    def from_model(cls, model: Mapping[str, Any]) -> ModelStatus:
        meta, spec = model.get("metadata", {}), model.get("spec", {})
        status = model.get("status") or {}
        replicas = status.get("replicas") or {}
        cache_loaded = (status.get("cache") or {}).get("loaded", False) if spec.get("cacheProfile") else None
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            desired_replicas=spec.get("replicas"),
            all_replicas=int(replicas.get("all") or 0),
            ready_replicas=int(replicas.get("ready") or 0),
            cache_loaded=cache_loaded,
            resource_version=str(meta.get("resourceVersion", "")),
        )

    def is_ready(self, min_ready_replicas: int = 1) -> bool:
        """Ready = enough ready replicas, and the cache loaded when the Model uses one."""
        return self.ready_replicas >= min_ready_replicas and self.cache_loaded is not False

    def describe(self, min_ready_replicas: int = 1) -> str:
        cache = "" if self.cache_loaded is None else f", cache {'loaded' if self.cache_loaded else 'loading'}"
        return f"{self.ready_replicas}/{min_ready_replicas} ready replicas ({self.all_replicas} pods{cache})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
