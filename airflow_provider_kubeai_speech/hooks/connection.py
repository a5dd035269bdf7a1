"""The ``kubeai_speech`` connection, read into plain settings (no I/O, no Airflow objects kept)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError

if TYPE_CHECKING:
    from collections.abc import Mapping

API_SUFFIX = "/openai/v1"
DEFAULT_NAMESPACE = "kubeai"
DEFAULT_KUBERNETES_CONN_ID = "kubernetes_default"
DEFAULT_CONNECT_TIMEOUT = 10.0
#: KubeAI holds a request while it scales a Model up from zero and the first request loads the
#: weights lazily: minutes, not seconds.
DEFAULT_READ_TIMEOUT = 600.0


@dataclass(frozen=True)
class KubeAIConnectionConfig:
    """Settings of a ``kubeai_speech`` connection.

    :param base_url: KubeAI's OpenAI-compatible base URL, ending in ``/openai/v1``.
    :param token: optional bearer token (for a gateway in front of KubeAI).
    :param kubernetes_conn_id: cncf-kubernetes connection for the cluster side.
    :param namespace: the namespace KubeAI watches.
    :param verify: ``True``, ``False`` or a CA bundle path (requests' ``verify``).
    :param connect_timeout: seconds to connect.
    :param read_timeout: seconds to wait for an answer.
    """

    base_url: str
    token: str | None
    kubernetes_conn_id: str
    namespace: str
    verify: bool | str
    connect_timeout: float
    read_timeout: float

    def __repr__(self) -> str:  # never show the token
        return f"KubeAIConnectionConfig(base_url={self.base_url!r}, namespace={self.namespace!r}, kubernetes_conn_id={self.kubernetes_conn_id!r}, verify={self.verify!r})"

    @classmethod
    def from_connection(
        cls,
        conn_id: str,
        host: str | None,
        schema: str | None,
        port: int | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> KubeAIConnectionConfig:
        def field(name: str, default: Any = None) -> Any:
            for key in (name, f"extra__kubeai_speech__{name}"):
                if extra.get(key) not in (None, ""):
                    return extra[key]
            return default

        return cls(
            base_url=base_url_of(conn_id, host, schema, port),
            token=password or None,
            kubernetes_conn_id=str(field("kubernetes_conn_id", DEFAULT_KUBERNETES_CONN_ID)),
            namespace=str(field("namespace", DEFAULT_NAMESPACE)),
            verify=_verify(conn_id, field("verify_ssl", True), field("ca_bundle")),
            connect_timeout=_seconds(
                conn_id, "connect_timeout", field("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
            ),
            read_timeout=_seconds(conn_id, "read_timeout", field("read_timeout", DEFAULT_READ_TIMEOUT)),
        )


def base_url_of(conn_id: str, host: str | None, schema: str | None, port: int | None) -> str:
    """``http(s)://host[:port][/path]/openai/v1`` from a connection's host, schema and port."""
    if not host:
        raise KubeAISpeechError(
            f"Connection {conn_id!r} has no host. Fix: set it to KubeAI's base URL, e.g. "
            "'http://kubeai.kubeai.svc.cluster.local'."
        )
    raw = host.strip()
    if "://" not in raw:
        scheme = schema if schema in ("http", "https") else "http"
        raw = f"{scheme}://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KubeAISpeechError(
            f"Connection {conn_id!r} has host {host!r}, which is not an http(s) URL. Fix: e.g. 'http://kubeai.kubeai.svc.cluster.local'."
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if not path.endswith(API_SUFFIX):
        path += API_SUFFIX
    return f"{parts.scheme}://{netloc}{path}"


def _verify(conn_id: str, verify_ssl: Any, ca_bundle: Any) -> bool | str:
    if isinstance(verify_ssl, str):
        lowered = verify_ssl.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise KubeAISpeechError(
                f"Connection {conn_id!r}: verify_ssl={verify_ssl!r} is not a boolean. Fix: true or false."
            )
        verify_ssl = lowered in ("true", "1", "yes")
    if ca_bundle:
        if not os.path.exists(str(ca_bundle)):
            raise KubeAISpeechError(
                f"Connection {conn_id!r}: ca_bundle={str(ca_bundle)!r} does not exist on this worker. Fix: point it at a "
                "PEM file of the CA certificates that signed the endpoint's certificate."
            )
        return str(ca_bundle)
    return bool(verify_ssl)


def _seconds(conn_id: str, name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0:
        raise KubeAISpeechError(
            f"Connection {conn_id!r}: {name}={value!r} is not a positive number of seconds. Fix: e.g. {name}=30."
        )
    return seconds
