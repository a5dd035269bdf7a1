"""Object storage addressed the Airflow way: a URI, and the connection that reaches it.

``s3://CONN@bucket/key`` names its connection in the URI (Airflow's ObjectStoragePath form). A URI
without one takes the operator's storage connection id, and failing that the scheme's default
connection, as the amazon and google providers' operators do (``aws_default`` for s3://,
``google_cloud_default`` for gs://) when that connection exists; otherwise the storage library's
own credential chain (boto's, google-auth's) is used.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError

#: The connection each scheme uses when neither the URI nor the operator names one.
DEFAULT_CONN_IDS: dict[str, str] = {
    "s3": "aws_default",
    "s3a": "aws_default",
    "gs": "google_cloud_default",
    "gcs": "google_cloud_default",
}


class StorageConnectionError(KubeAISpeechError):
    """A URI and the storage connection given for it disagree."""


def conn_id_in_uri(uri: str) -> str | None:
    """The connection id a URI names before its ``@`` (``s3://aws_prod@bucket/key``), or None."""
    netloc = urlsplit(uri).netloc
    userinfo, at, _ = netloc.rpartition("@")
    return (userinfo or None) if at else None


def _connection_exists(conn_id: str) -> bool:
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception:  # AirflowNotFoundException, or no way to reach connections at all
        return False
    return True


def resolve_conn_id(uri: str, conn_id: str | None, *, field: str = "conn_id") -> str | None:
    """The connection that reaches ``uri``: the URI's own, else ``conn_id``, else the scheme's
    default when it exists (None: the storage library's credential chain).

    :param uri: a storage URI.
    :param conn_id: the connection id the operator was given for this side (may be None).
    :param field: the operator argument ``conn_id`` came from, for the error message.
    """
    in_uri = conn_id_in_uri(uri)
    if in_uri is not None:
        if conn_id and conn_id != in_uri:
            raise StorageConnectionError(
                f"{uri!r} names the connection {in_uri!r} but {field}={conn_id!r}. "
                f"Fix: drop '{in_uri}@' from the URI or set {field}={in_uri!r}."
            )
        return in_uri
    if conn_id:
        return conn_id
    default = DEFAULT_CONN_IDS.get(urlsplit(uri).scheme.lower())
    if default is not None and _connection_exists(default):
        return default
    return None


def storage_path(uri: str, conn_id: str | None = None, *, field: str = "conn_id") -> Any:
    """An ``ObjectStoragePath`` for ``uri`` reached through :func:`resolve_conn_id`'s connection."""
    from airflow.sdk import ObjectStoragePath

    resolved = resolve_conn_id(uri, conn_id, field=field)
    if resolved is None or conn_id_in_uri(uri) is not None:
        return ObjectStoragePath(uri)
    return ObjectStoragePath(uri, conn_id=resolved)


def plain_uri(path: Any) -> str:
    """``path`` as ``scheme://bucket/key``, without the connection id ObjectStoragePath's ``str()``
    puts in front of the bucket: the form for manifests, logs and lineage."""
    protocol = getattr(path, "protocol", None)
    if protocol and getattr(path, "conn_id", None):
        return f"{protocol}://{path.path}"
    return str(path)
