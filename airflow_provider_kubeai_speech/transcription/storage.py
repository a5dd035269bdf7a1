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

from airflow_provider_kubeai_speech.exceptions import StorageConnectionError as StorageConnectionError

#: The connection each scheme uses when neither the URI nor the operator names one.
DEFAULT_CONN_IDS: dict[str, str] = {
    "s3": "aws_default",
    "s3a": "aws_default",
    "gs": "google_cloud_default",
    "gcs": "google_cloud_default",
}


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


#: S3 (and S3-compatible) error codes, and what they mean for the object asked for.
_S3_CODES: dict[str, str] = {
    "AccessDenied": "permission denied (AccessDenied): the connection's credentials may not read or write it",
    "AllAccessDisabled": "permission denied (AllAccessDisabled): all access to it is disabled",
    "ExpiredToken": "the credentials have expired (ExpiredToken): refresh the connection's credentials",
    "InvalidAccessKeyId": "the access key is not known to the store (InvalidAccessKeyId): check the connection",
    "SignatureDoesNotMatch": "the secret key is wrong (SignatureDoesNotMatch): check the connection",
    "NoSuchKey": "no such object (NoSuchKey)",
    "NoSuchBucket": "no such bucket (NoSuchBucket)",
    "SlowDown": "the store is throttling requests (SlowDown): lower max_concurrency or retry later",
    "RequestTimeout": "the store timed out (RequestTimeout)",
    "InternalError": "the store failed (InternalError): retry later",
    "ServiceUnavailable": "the store is unavailable (ServiceUnavailable): retry later",
}
#: Errors raised before any answer: their class names, whichever library raised them.
_UNREACHABLE = {
    "EndpointConnectionError": "the store cannot be reached",
    "ConnectTimeoutError": "the store did not answer the connection in time",
    "ReadTimeoutError": "the store stopped answering",
    "ConnectionClosedError": "the store closed the connection",
    "ClientConnectorError": "the store cannot be reached",
    "ServerDisconnectedError": "the store closed the connection",
    "NoCredentialsError": "no credentials for the store: give the storage connection (e.g. aws_default)",
    "PartialCredentialsError": "incomplete credentials for the store: check the storage connection",
}
_ERRNO_TEXT = {
    2: "no such file or object",
    13: "permission denied",
    28: "no space left on the device",
    30: "the file system is read-only",
    122: "the disk quota is exceeded",
    5: "an I/O error",
}


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and what caused it (s3fs turns a botocore ClientError into an OSError ``from`` it)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_storage_error(err: BaseException, uri: str) -> str:
    """What a storage library's error means for ``uri``, in one line that names the cause, e.g.
    ``'s3://calls/a.wav': archived (storage class GLACIER): restore it first``.

    botocore, s3fs, gcsfs and aiohttp errors are recognised by class name and attributes, so none
    of those libraries is imported here (s3fs reports an archived object as a permission error;
    the botocore error it comes from says what it is).

    :param err: the exception a read, write or listing raised.
    :param uri: the location it was raised for.
    """
    return f"{uri!r}: {storage_error_reason(err)}"


def storage_error_reason(err: BaseException) -> str:
    """The cause :func:`describe_storage_error` names, without the location."""
    for cause in _causes(err):
        response = getattr(cause, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            error = response["Error"]
            code = str(error.get("Code", ""))
            if code == "InvalidObjectState":
                storage_class = error.get("StorageClass") or error.get("AccessTier") or "GLACIER"
                return f"archived (storage class {storage_class}): restore it first"
            if code in _S3_CODES:
                return _S3_CODES[code]
            if code:
                return f"the store refused the request ({code}: {error.get('Message', '')})"
        kind = type(cause).__name__
        if kind in _UNREACHABLE:
            return f"{_UNREACHABLE[kind]} ({kind}: {cause})"
    status = getattr(err, "code", None)  # gcsfs HttpError, aiohttp ClientResponseError
    if isinstance(status, int) and not isinstance(err, OSError) and 400 <= status < 600:
        return f"the store answered HTTP {status} ({type(err).__name__}: {err})"
    if isinstance(err, OSError) and err.errno in _ERRNO_TEXT:
        return f"{_ERRNO_TEXT[err.errno]} ({type(err).__name__}: {err.strerror or err})"
    if isinstance(err, FileNotFoundError):
        return "no such file or object"
    if isinstance(err, PermissionError):
        return f"permission denied ({err})"
    return f"{type(err).__name__}: {err}"
