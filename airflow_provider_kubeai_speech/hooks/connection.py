"""The ``kubeai_speech`` connection, read into plain settings (no network I/O, no Airflow objects kept).

Where the credentials may go is decided here, once: a bearer token (the password) or URL
credentials (``https://user:pw@host``) are only ever sent over https, except to a loopback host
or when the connection says ``allow_token_over_http``; the base URL never carries the URL
credentials (they become HTTP basic auth, kept out of ``repr`` and messages).
"""

from __future__ import annotations

import base64
import ipaddress
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

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
#: The longest answer read: a verbose_json with word times for a three-hour recording is ~3 MB.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def extra_field(extra: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """An extra by its name or its ``extra__kubeai_speech__`` form; ``default`` when empty."""
    for key in (name, f"extra__kubeai_speech__{name}"):
        if extra.get(key) not in (None, ""):
            return extra[key]
    return default


@dataclass(frozen=True)
class ClusterSettings:
    """The part of a ``kubeai_speech`` connection the cluster side needs, and nothing else: the
    endpoint's settings (host, token, TLS, ca_bundle) are not read, so a worker or triggerer that
    only watches Models does not fail on an endpoint setting it never uses.

    :param kubernetes_conn_id: cncf-kubernetes connection for the cluster side.
    :param namespace: the namespace KubeAI watches.
    :param connect_timeout: seconds to connect (to the API server for watches).
    """

    kubernetes_conn_id: str
    namespace: str
    connect_timeout: float

    @classmethod
    def from_extra(cls, conn_id: str, extra: Mapping[str, Any]) -> ClusterSettings:
        return cls(
            kubernetes_conn_id=str(extra_field(extra, "kubernetes_conn_id", DEFAULT_KUBERNETES_CONN_ID)),
            namespace=str(extra_field(extra, "namespace", DEFAULT_NAMESPACE)),
            connect_timeout=_seconds(
                conn_id, "connect_timeout", extra_field(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
            ),
        )


@dataclass(frozen=True)
class KubeAIConnectionConfig:
    """Settings of a ``kubeai_speech`` connection.

    :param base_url: KubeAI's OpenAI-compatible base URL, ending in ``/openai/v1``.
    :param token: optional bearer token (for a gateway in front of KubeAI).
    :param kubernetes_conn_id: cncf-kubernetes connection for the cluster side.
    :param namespace: the namespace KubeAI watches.
    :param verify: ``True``, ``False`` or a CA bundle path (requests' ``verify``).
    :param connect_timeout: seconds to connect.
    :param read_timeout: seconds to wait for an answer (each read of the socket).
    :param basic_auth: ``(user, password)`` from credentials in the host URL, sent as HTTP basic auth.
    :param max_response_bytes: the longest answer read; a longer one is a failure.
    :param total_timeout: seconds one attempt may take from connecting to the answer's last
        byte (None: derived from ``read_timeout`` and the upload's size by the endpoint client).
    """

    base_url: str
    token: str | None
    kubernetes_conn_id: str
    namespace: str
    verify: bool | str
    connect_timeout: float
    read_timeout: float
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    total_timeout: float | None = None

    def __repr__(self) -> str:  # never show the token or the URL credentials
        return f"KubeAIConnectionConfig(base_url={self.base_url!r}, namespace={self.namespace!r}, kubernetes_conn_id={self.kubernetes_conn_id!r}, verify={self.verify!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form in which this connection's credentials could appear in a text."""
        return credential_forms(self.token, self.basic_auth)

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
            return extra_field(extra, name, default)

        token = password or None
        basic_auth = url_credentials(host)
        if token and basic_auth:
            raise KubeAISpeechError(
                f"Connection {conn_id!r} has both a password (bearer token) and credentials in its host URL. "
                "Fix: keep one: the token in the password field, or user:password in the URL for basic auth."
            )
        verify_ssl, ca_bundle = field("verify_ssl"), field("ca_bundle")
        base_url = base_url_of(
            conn_id,
            host,
            schema,
            port,
            tls_hint=bool(ca_bundle)
            or (verify_ssl is not None and not _boolean(conn_id, "verify_ssl", verify_ssl)),
            credentials=bool(token or basic_auth),
            allow_http=_boolean(conn_id, "allow_token_over_http", field("allow_token_over_http", False)),
        )
        if ca_bundle and base_url.startswith("http://"):
            raise KubeAISpeechError(
                f"Connection {conn_id!r}: ca_bundle={str(ca_bundle)!r} is set but its URL {base_url!r} is plain http, "
                "so no certificate would be checked. Fix: make the host https://..., or remove ca_bundle."
            )
        total_timeout = field("total_timeout")
        cluster = ClusterSettings.from_extra(conn_id, extra)
        return cls(
            base_url=base_url,
            token=token,
            kubernetes_conn_id=cluster.kubernetes_conn_id,
            namespace=cluster.namespace,
            verify=_verify(conn_id, True if verify_ssl is None else verify_ssl, ca_bundle),
            connect_timeout=cluster.connect_timeout,
            read_timeout=_seconds(conn_id, "read_timeout", field("read_timeout", DEFAULT_READ_TIMEOUT)),
            basic_auth=basic_auth,
            max_response_bytes=response_limit(
                conn_id, field("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES)
            ),
            total_timeout=None
            if total_timeout is None
            else _seconds(conn_id, "total_timeout", total_timeout),
        )


def base_url_of(
    conn_id: str,
    host: str | None,
    schema: str | None,
    port: int | None,
    *,
    tls_hint: bool = False,
    credentials: bool = False,
    allow_http: bool = False,
) -> str:
    """``http(s)://host[:port][/path]/openai/v1`` from a connection's host, schema and port.

    Without a scheme in the host, the schema field decides; without one either (Airflow's URI form
    ``kubeai-speech://:TOKEN@host:443/`` gives ``schema=''``), https is chosen for port 443, for
    ``tls_hint`` (a ``ca_bundle`` extra, or ``verify_ssl=false``: both only mean something with TLS) and when ``credentials`` would go to a
    host that is not loopback; http otherwise. URL credentials are never part of the result.

    :param tls_hint: the connection has TLS settings.
    :param credentials: a token or URL credentials will be sent.
    :param allow_http: send them over plain http to a remote host anyway.
    :raises KubeAISpeechError: no host, not http(s), or credentials over plain http to a remote host.
    """
    if not host or not host.strip():
        raise KubeAISpeechError(
            f"Connection {conn_id!r} has no host. Fix: set it to KubeAI's base URL, e.g. "
            "'http://kubeai.kubeai.svc.cluster.local'."
        )
    raw = host.strip()
    if "://" not in raw:
        hostname = urlsplit(f"http://{raw}").hostname or ""
        if schema in ("http", "https"):
            scheme = schema
        elif (
            port == 443
            or urlsplit(f"http://{raw}").port == 443
            or tls_hint
            or (credentials and not is_loopback(hostname))
        ):
            scheme = "https"
        else:
            scheme = "http"
        raw = f"{scheme}://{raw}"
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KubeAISpeechError(
            f"Connection {conn_id!r} has host {_without_userinfo(host)!r}, which is not an http(s) URL. "
            "Fix: e.g. 'http://kubeai.kubeai.svc.cluster.local'."
        )
    netloc = parts.netloc.rpartition("@")[2]
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if not path.endswith(API_SUFFIX):
        path += API_SUFFIX
    url = f"{parts.scheme}://{netloc}{path}"
    if parts.scheme == "http" and credentials and not allow_http and not is_loopback(parts.hostname):
        raise KubeAISpeechError(
            f"Connection {conn_id!r} would send its credentials (the password's bearer token, or user:password "
            f"in the URL) in cleartext to {url!r} (host={_without_userinfo(host)!r}, schema={schema!r}). "
            f"Fix: use https (host 'https://{netloc}'), or, only on a network you trust end to end (e.g. a "
            "service mesh with mTLS), set the extra allow_token_over_http=true."
        )
    return url


def is_loopback(hostname: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): traffic that never leaves the machine."""
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def url_credentials(host: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from ``scheme://user:password@host`` (percent-decoded), or None."""
    if not host or "@" not in host:
        return None
    raw = host.strip()
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    if parts.username is None and parts.password is None:
        return None
    return unquote(parts.username or ""), unquote(parts.password or "")


def credential_forms(token: str | None, basic_auth: tuple[str, str] | None) -> tuple[str, ...]:
    """The texts that reveal these credentials: the token, and for URL credentials the password,
    ``user:password`` raw and percent-encoded, and its base64 (an echoed basic-auth header)."""
    forms: list[str] = []
    if token:
        forms.append(token)
    if basic_auth:
        user, password = basic_auth
        pair = f"{user}:{password}"
        forms += [password, pair, base64.b64encode(pair.encode("utf-8")).decode()]
        forms += [quote(password, safe=""), f"{quote(user, safe='')}:{quote(password, safe='')}"]
    return tuple(f for f in dict.fromkeys(forms) if f)


def _without_userinfo(host: str) -> str:
    raw = host.strip()
    if "@" not in raw:
        return raw
    scheme, sep, rest = raw.rpartition("://") if "://" in raw else ("", "", raw)
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}***@{authority.rpartition('@')[2]}{slash}{path}"


def response_limit(conn_id: str, value: Any) -> int:
    """``max_response_bytes`` checked: a positive whole number of bytes."""
    try:
        limit = int(value) if not isinstance(value, bool) and float(value) == int(float(value)) else -1
    except (TypeError, ValueError, OverflowError):
        limit = -1
    if limit <= 0:
        raise KubeAISpeechError(
            f"Connection {conn_id!r}: max_response_bytes={value!r} is not a positive number of bytes. "
            f"Fix: e.g. max_response_bytes={DEFAULT_MAX_RESPONSE_BYTES} (64 MiB, the default)."
        )
    return limit


def _boolean(conn_id: str, name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
        return value.strip().lower() in _TRUE
    raise KubeAISpeechError(
        f"Connection {conn_id!r}: {name}={value!r} is not a boolean. Fix: true or false "
        '(a JSON boolean, or the text "true"/"false").'
    )


def _verify(conn_id: str, verify_ssl: Any, ca_bundle: Any) -> bool | str:
    verify = _boolean(conn_id, "verify_ssl", verify_ssl)
    if ca_bundle:
        if not isinstance(ca_bundle, str | os.PathLike):
            raise KubeAISpeechError(
                f"Connection {conn_id!r}: ca_bundle={ca_bundle!r} is not a path. Fix: the path of a PEM file "
                "of the CA certificates that signed the endpoint's certificate."
            )
        if not os.path.exists(str(ca_bundle)):
            raise KubeAISpeechError(
                f"Connection {conn_id!r}: ca_bundle={str(ca_bundle)!r} does not exist on this worker. Fix: point it at a "
                "PEM file of the CA certificates that signed the endpoint's certificate."
            )
        if not verify:
            raise KubeAISpeechError(
                f"Connection {conn_id!r}: ca_bundle={str(ca_bundle)!r} and verify_ssl=false contradict each other. "
                "Fix: remove verify_ssl (the bundle is then used), or remove ca_bundle."
            )
        return str(ca_bundle)
    return verify


def _seconds(conn_id: str, name: str, value: Any) -> float:
    try:
        seconds = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0 or not math.isfinite(seconds):
        raise KubeAISpeechError(
            f"Connection {conn_id!r}: {name}={value!r} is not a positive number of seconds. Fix: e.g. {name}=30."
        )
    return seconds
