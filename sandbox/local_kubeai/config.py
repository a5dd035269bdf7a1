"""Settings of a sandbox: where it listens, how its simulated cluster and engines behave."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


PROVIDER_ROLE: dict[str, tuple[str, ...]] = {
    "models": ("list", "watch", "create", "patch", "delete"),
}
"""The least the provider needs (docs/operators.rst): reads are lists (one Model by field selector)
and watches, writes are server-side applies (create on the first) and merge patches, and deletes.
Nothing on ``models/status`` (KubeAI writes it; the provider reads it with the Model) or
``models/scale`` (the teardown also sets ``minReplicas``, so it patches the Model itself)."""


@dataclass
class SandboxConfig:
    """How a :class:`~local_kubeai.Sandbox` behaves.

    :param host: address to listen on (loopback by default).
    :param kube_port: Kubernetes API port (0 = a free port).
    :param kubeai_port: KubeAI endpoint port (0 = a free port).
    :param namespaces: namespaces the token may use (others answer 403); the first is KubeAI's.
    :param token: bearer token of the Kubernetes API (generated when empty).
    :param role: when set, the token is bound to exactly these verbs, by RBAC resource
        (``models``, ``models/status``, ``models/scale``), e.g. :data:`PROVIDER_ROLE`; anything
        else answers 403 as a namespaced Role would. None grants everything in ``namespaces``.
    :param gateway_token: when set, the KubeAI endpoint wants ``Authorization: Bearer <it>``
        (a gateway in front of KubeAI); KubeAI itself has no authentication.
    :param engine: ``fake``, ``pocketsphinx`` or ``faster-whisper``.
    :param model_path: local weights for ``faster-whisper`` (None: the bundled tiny.en).
    :param startup_delay: seconds from pod creation to Ready.
    :param startup_stagger: extra seconds per pod already starting: the pods of one scale-up become
        Ready one after another, as on a real cluster.
    :param cache_load_delay: seconds to fill the model cache of a Model with a cacheProfile.
    :param first_request_delay: extra seconds of a replica's first request (lazy weight loading).
    :param replica_concurrency: requests one replica serves at once; more wait in line.
    :param latency_per_request: fake engine seconds per request.
    :param latency_per_audio_second: fake engine seconds per second of audio.
    :param autoscale_interval: seconds between autoscaler passes (KubeAI's ``modelAutoscaling.interval``,
        10 s); tests shorten it.
    :param autoscale_window: seconds the autoscaler averages active requests over (KubeAI's
        ``modelAutoscaling.timeWindow``, 10 min).
    :param host_wait_timeout: seconds a request waits for a ready replica before 504.
    :param bookmark_interval: seconds between watch bookmarks.
    :param cluster_admin: the token may do everything, everywhere (a cluster-admin binding):
        cluster-wide lists, ``/api/v1/namespaces``, and namespaces that do not exist, which then
        answer 404 ``namespaces "x" not found`` as on a real server (authorization comes first).
    :param watch_history: events kept at most for watch resumption; older resourceVersions get 410.
    :param watch_history_seconds: seconds an event is kept at most (the window etcd compaction
        and the watch cache leave); a watch, exact list or continue token from before gets 410.
    :param kube_tls: serve the Kubernetes API over https with a CA generated into ``state_dir``
        and named in the kubeconfig (the default: Go clients, kubectl among them, never send a
        bearer token over http). False serves http.
    :param tls: serve the KubeAI endpoint over https too (same CA).
    :param state_dir: where the kubeconfig, CA and logs go (a temporary folder when None).
    :param seed: random seed of fault injection.
    """

    host: str = "127.0.0.1"
    kube_port: int = 0
    kubeai_port: int = 0
    namespaces: tuple[str, ...] = ("kubeai",)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    role: dict[str, tuple[str, ...]] | None = None
    gateway_token: str | None = None
    engine: str = "fake"
    model_path: str | None = None
    startup_delay: float = 0.5
    startup_stagger: float = 0.0
    cache_load_delay: float = 0.5
    first_request_delay: float = 0.0
    replica_concurrency: int = 4
    latency_per_request: float = 0.0
    latency_per_audio_second: float = 0.0
    autoscale_interval: float = 10.0
    autoscale_window: float = 600.0
    host_wait_timeout: float = 600.0
    bookmark_interval: float = 5.0
    cluster_admin: bool = False
    watch_history: int = 1000
    watch_history_seconds: float = 300.0
    kube_tls: bool = True
    tls: bool = False
    state_dir: Path | None = None
    seed: int | None = None
