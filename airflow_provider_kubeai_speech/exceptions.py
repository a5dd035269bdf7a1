"""Provider exceptions: one base class, and a subclass per thing a DAG author may want to catch."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException


class KubeAISpeechError(AirflowException):
    """Base class of every error this provider raises.

    :ivar attempts: requests made before giving up (0 where nothing counts them); declared here so
        that callers read ``err.attempts`` of any provider error instead of probing for it.
    """

    attempts: int = 0


class InvalidArgumentError(KubeAISpeechError, ValueError):
    """An operator or hook argument that cannot work; the message names it, the value and the fix.
    A ``ValueError`` too, so code that caught the plain ``ValueError`` raised before still does."""


class KubeAIClusterError(KubeAISpeechError):
    """The Kubernetes API refused a request; the message is the API server's.

    :param status: HTTP status from the API server (0 when it could not be reached).
    :param reason: the Kubernetes ``Status.reason`` (``Invalid``, ``Forbidden``, ...).
    """

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class ModelNotFoundError(KubeAISpeechError):
    """No KubeAI Model of that name in the namespace (or the endpoint does not know the model)."""


class ModelDeletedError(KubeAISpeechError):
    """The Model was deleted while waiting for it."""


class CapacityNotProvidedError(KubeAISpeechError):
    """A wait for ready replicas that nothing is going to provide (see :mod:`..capacity`)."""


class ReadinessTimeoutError(KubeAISpeechError):
    """The Model did not become ready in time.

    :param ready_replicas: how many replicas were ready at the deadline.
    """

    def __init__(self, message: str, *, ready_replicas: int = 0) -> None:
        super().__init__(message)
        self.ready_replicas = ready_replicas


class KubeAIEndpointError(KubeAISpeechError):
    """KubeAI's HTTP endpoint answered with an error or could not be reached.

    :param http_status: HTTP status (0 for connection failures).
    :param retryable: whether retrying the same request could succeed.
    :param attempts: requests made before giving up.
    """

    def __init__(
        self, message: str, *, http_status: int = 0, retryable: bool = False, attempts: int = 0
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retryable = retryable
        self.attempts = attempts


class MalformedResponseError(KubeAIEndpointError):
    """The endpoint answered 200 with a body that is not what the format promises."""


class AudioExtraMissing(KubeAISpeechError):
    """Splitting long recordings needs PyAV and numpy: ``pip install 'airflow-provider-kubeai-speech[audio]'``."""


class AudioDecodeError(KubeAISpeechError):
    """A recording FFmpeg cannot read: corrupt, truncated, or not audio."""


class EndpointRedirectError(KubeAIEndpointError):
    """The endpoint answered with a redirect; redirects are never followed (the token and the
    upload go only to the connection's host).

    :param location: the ``Location`` it pointed at (``None`` when absent).
    """

    def __init__(self, message: str, *, http_status: int, location: str | None, attempts: int = 0) -> None:
        super().__init__(message, http_status=http_status, attempts=attempts)
        self.location = location


class ResponseTooLargeError(KubeAIEndpointError):
    """The answer is longer than the connection's ``max_response_bytes``."""


class RequestDeadlineError(KubeAIEndpointError):
    """One attempt took longer than the connection's ``total_timeout`` (upload, wait and answer)."""


class AudioReadError(KubeAISpeechError):
    """The audio could not be read while it was being uploaded (a storage backend's error)."""


# -- the batch engine and long recordings (re-exported from their old modules) -----------------


class StorageConnectionError(KubeAISpeechError):
    """A URI and the storage connection given for it disagree."""


class OutputStorageError(KubeAISpeechError):
    """The output folder cannot be written or read (disk full, read-only, store unreachable, ...).

    :param message: what failed, where, why, and the fix.
    :param location: the file or object concerned.
    :param fatal: whether the folder as a whole is failing (False: only this one name is refused).
    """

    def __init__(self, message: str, *, location: str, fatal: bool = True) -> None:
        super().__init__(message)
        self.location = location
        self.fatal = fatal


class MalformedPieceError(KubeAISpeechError):
    """A piece's result is not a usable ``verbose_json`` transcript (from the endpoint or the cache)."""


class PiecesFailed(KubeAISpeechError):
    """Some pieces of a recording could not be transcribed; the others are kept for a rerun.

    :param pieces: records of the pieces that did finish.
    :param attempts: requests made for the pieces that failed.
    """

    def __init__(self, message: str, pieces: list[dict[str, object]], attempts: int = 0) -> None:
        super().__init__(message)
        self.pieces = pieces
        self.attempts = attempts


class BatchFailed(KubeAISpeechError):
    """More inputs failed than the batch tolerates; every finished transcript is kept.

    :param summary: the batch's results so far (a ``transcription.batch.BatchSummary``).
    """

    def __init__(self, message: str, summary: object) -> None:
        super().__init__(message)
        self.summary = summary


class OutputFailed(BatchFailed):
    """The output folder failed (disk full, read-only, store unreachable): the batch stopped
    sending files; everything finished before is kept and recorded.

    :param summary: the batch's results so far.
    :param cause: the output's failure.
    """

    def __init__(self, message: str, summary: object, cause: OutputStorageError) -> None:
        super().__init__(message, summary)
        self.cause = cause
