"""KubeAI's HTTP endpoint: one pooled session, retries, streaming multipart uploads.

Retries: connection errors, timeouts, truncated bodies and 500/502/503/504 are retried with
exponential backoff and jitter (urllib3's ``Retry`` does the arithmetic and reads
``Retry-After``); other 4xx never are. The request body is rebuilt for every attempt, since a
streamed upload cannot be rewound, which is why the loop is driven here rather than inside urllib3.

What leaves and what is accepted:

- The token (and URL credentials) go only to the connection's own origin (scheme, host, port);
  redirects are never followed, and a redirect is a failure naming its Location.
- Only a 200 whose body has the shape of the format asked for is a transcript
  (:mod:`..transcription.answers`).
- An answer is read as a stream and abandoned past ``max_response_bytes``; each attempt has an
  overall deadline (``total_timeout``, by default derived from ``read_timeout`` and the upload's
  size), checked while uploading and while reading.
- Every error text is built here with the credentials redacted and control characters escaped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_kubeai_speech.exceptions import (
    AudioReadError,
    EndpointRedirectError,
    KubeAIEndpointError,
    KubeAISpeechError,
    MalformedResponseError,
    ModelNotFoundError,
    RequestDeadlineError,
    ResponseTooLargeError,
)
from airflow_provider_kubeai_speech.hooks.connection import DEFAULT_MAX_RESPONSE_BYTES, credential_forms
from airflow_provider_kubeai_speech.speech import AudioSource, TranscriptionRequest, TranscriptionResult
from airflow_provider_kubeai_speech.text_safety import printable, redact
from airflow_provider_kubeai_speech.transcription.sources import audio_opener

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
_BODY_EXCERPT = 300
_READ_BLOCK = 1 << 16
#: The slowest upload the default deadline allows for (2 Mbit/s), on top of 2 x read_timeout.
MIN_UPLOAD_BYTES_PER_SECOND = 256 * 1024


@dataclass(frozen=True)
class RetrySettings:
    """How the endpoint client retries.

    :param max_attempts: attempts per request, the first included.
    :param backoff_factor: base of the exponential backoff (seconds).
    :param backoff_max: longest backoff (seconds).
    :param backoff_jitter: random seconds added to each backoff.
    """

    max_attempts: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5


class SpeechEndpointClient:
    """Talks to ``<base_url>/models`` and ``<base_url>/audio/transcriptions``.

    :param base_url: e.g. ``http://kubeai.kubeai.svc.cluster.local/openai/v1``.
    :param token: bearer token for a gateway in front of KubeAI (never logged).
    :param verify: TLS verification: True, False or a CA bundle path.
    :param connect_timeout: seconds to connect.
    :param read_timeout: seconds to wait for an answer (allow for a cold start).
    :param retry: retry settings.
    :param pool_size: pooled connections (at least the batch concurrency).
    :param basic_auth: ``(user, password)`` for HTTP basic auth (never logged).
    :param max_response_bytes: the longest answer read (decoded); longer is :class:`ResponseTooLargeError`.
    :param total_timeout: seconds one attempt may take, upload and answer included; None:
        ``connect_timeout + 2 * read_timeout`` plus one second per 256 KiB uploaded.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        retry: RetrySettings | None = None,
        pool_size: int = 16,
        basic_auth: tuple[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        total_timeout: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        # bytes: requests would encode str credentials as latin-1 and fail on anything else
        self._basic_auth = tuple(part.encode("utf-8") for part in basic_auth) if basic_auth else None
        self._secrets = credential_forms(token, basic_auth)
        self._origin = origin(self.base_url)
        self.verify = verify
        self._verify: bool | str = verify
        self.timeout = (connect_timeout, read_timeout)
        self.max_response_bytes = max_response_bytes
        self.total_timeout = total_timeout
        self.retry = retry or RetrySettings()
        self.pool_size = pool_size
        self._session: requests.Session | None = None
        self._session_lock = threading.Lock()
        self.stopping = threading.Event()

    def __repr__(self) -> str:
        return f"SpeechEndpointClient(base_url={self.base_url!r})"

    @property
    def session(self) -> requests.Session:
        with self._session_lock:
            if self._session is None:
                import requests
                from requests.adapters import HTTPAdapter

                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.verify = self._verify = self._effective_verify()
                # Environment proxies are resolved once here: with trust_env on, requests re-reads
                # the whole environment on every request (13 % of the client's CPU in a batch).
                session.proxies = requests.utils.get_environ_proxies(self.base_url)
                session.trust_env = False
                session.headers["User-Agent"] = "airflow-provider-kubeai-speech"
                self._session = session
            return self._session

    def _effective_verify(self) -> bool | str:
        """The connection's ``ca_bundle`` or ``verify_ssl=false`` first; with neither,
        ``REQUESTS_CA_BUNDLE`` then ``CURL_CA_BUNDLE`` (as requests reads them); else certifi's CAs."""
        if self.verify is not True:
            return self.verify
        for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            path = os.environ.get(variable)
            if path:
                if not os.path.exists(path):
                    raise KubeAIEndpointError(
                        self.clean(
                            f"{variable}={path!r} (environment) does not exist on this worker. Fix: point it at a "
                            "PEM file of CA certificates, unset it, or set the connection's ca_bundle extra (which wins)."
                        )
                    )
                return path
        return True

    def clean(self, text: object) -> str:
        """``text`` with this client's credentials redacted and control characters escaped."""
        return printable(redact(str(text), self._secrets))

    def _credentials_for(self, url: str) -> tuple[dict[str, str], Any]:
        """The Authorization header and auth for ``url``: only for the connection's own origin."""
        if origin(url) != self._origin:
            return {}, None
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        return headers, self._basic_auth

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def url(self, path: str | None) -> str:
        if path and urlsplit(path).scheme in ("http", "https"):
            return path
        return f"{self.base_url}/{(path or '').lstrip('/')}"

    # -- requests with retries ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str | None,
        *,
        body: Callable[[Callable[[], None]], tuple[Any, dict[str, str]]] | None = None,
        what: str = "request",
        **kwargs: Any,
    ) -> tuple[requests.Response, int]:
        """Send with retries; return the final response (any status, read in full) and the attempts.

        Redirects are not followed: a 3xx comes back as it is. The token goes only to the
        connection's origin (an absolute ``path`` elsewhere is sent without it).

        :param body: builds ``(data, headers)`` afresh for each attempt (streamed bodies are
            single-use), given a function to call before each block is sent (it raises at the deadline).
        :raises KubeAIEndpointError: when every attempt failed to get an answer, the answer was too
            long (:class:`ResponseTooLargeError`) or too slow (:class:`RequestDeadlineError`).
        :raises AudioReadError: the upload's source failed while being read.
        """
        import requests
        from urllib3.exceptions import MaxRetryError
        from urllib3.util.retry import Retry

        from airflow_provider_kubeai_speech.hooks.multipart import UploadAborted

        policy = Retry(
            total=self.retry.max_attempts - 1,
            connect=None,
            read=None,
            status=None,
            other=None,
            redirect=0,
            allowed_methods=None,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.retry.backoff_factor,
            backoff_max=self.retry.backoff_max,
            backoff_jitter=self.retry.backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
        )
        url = self.url(path)
        what = self.clean(what)
        session = self.session
        kwargs.setdefault("timeout", self.timeout)
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE in the environment.
        kwargs.setdefault("verify", self._verify)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        auth_headers, auth = self._credentials_for(url)
        kwargs.setdefault("auth", auth)
        fixed_data = kwargs.pop("data", None)
        extra_headers = dict(kwargs.pop("headers", None) or {})
        attempts = 0
        while True:
            attempts += 1
            self._check_stopping(what)
            _rewind(kwargs.get("files"))
            deadline = _Deadline(self, what, url, attempts)
            try:
                data, headers = body(deadline.check_upload) if body is not None else (fixed_data, {})
            except UploadAborted as err:  # a stream of unknown length is spooled while the body is built
                raise _reason(err, attempts) from err
            deadline.upload = data
            try:
                response = session.request(
                    method, url, data=data, headers={**auth_headers, **headers, **extra_headers}, **kwargs
                )
                self._read(response, deadline, what, url, attempts)
            except UploadAborted as err:
                _close(data)
                raise _reason(err, attempts) from err
            except requests.exceptions.SSLError as err:
                _close(data)
                raise KubeAIEndpointError(
                    self.clean(
                        f"{what}: TLS verification of {url} failed: {_safe(err)}. Fix: put the CA that signed the "
                        "endpoint's certificate in the connection's ca_bundle extra (verify_ssl=false turns checking off; not recommended)."
                    )
                ) from None  # the cause's text names the URL unredacted, which may carry credentials
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as err:
                _close(data)
                try:
                    policy = policy.increment(method, url, error=err)
                except MaxRetryError:
                    raise KubeAIEndpointError(
                        self.clean(
                            f"{what}: no answer from {url} after {attempts} attempt(s): {type(err).__name__}: {_safe(err)}"
                        ),
                        retryable=True,
                        attempts=attempts,
                    ) from None  # the cause's text names the URL unredacted, which may carry credentials
                delay = policy.get_backoff_time()
                log.info(
                    "%s: attempt %d failed (%s); retrying in %.1f s",
                    what,
                    attempts,
                    type(err).__name__,
                    delay,
                )
                self._pause(delay)
                continue
            _close(data)
            if response.status_code in RETRY_STATUSES:
                try:
                    policy = policy.increment(method, url, response=response.raw)
                except MaxRetryError:
                    return response, attempts
                retry_after = policy.get_retry_after(response.raw)
                delay = (
                    min(MAX_RETRY_AFTER, retry_after)
                    if retry_after is not None
                    else policy.get_backoff_time()
                )
                log.info(
                    "%s: HTTP %d on attempt %d; retrying in %.1f s",
                    what,
                    response.status_code,
                    attempts,
                    delay,
                )
                self._pause(delay)
                continue
            return response, attempts

    def allowed_seconds(self, uploaded: int) -> float:
        """How long one attempt may take, having uploaded ``uploaded`` bytes so far."""
        if self.total_timeout is not None:
            return self.total_timeout
        connect, read = self.timeout
        return connect + 2 * read + uploaded / MIN_UPLOAD_BYTES_PER_SECOND

    def _read(
        self, response: requests.Response, deadline: _Deadline, what: str, url: str, attempts: int
    ) -> None:
        """Read the body in blocks, stopping at the size limit and at the deadline (an answer that
        trickles never ends otherwise: each read returns before ``read_timeout``)."""
        import requests
        from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

        limit = self.max_response_bytes
        try:
            announced = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            announced = 0
        blocks: list[bytes] = []
        total = 0
        try:
            if announced > limit:
                raise ResponseTooLargeError(
                    self.clean(
                        f"{what}: the answer from {url} announces {announced} bytes, more than max_response_bytes={limit}. "
                        "Fix: raise max_response_bytes in the connection if such answers are expected."
                    ),
                    http_status=response.status_code,
                    attempts=attempts,
                )
            while True:
                deadline.check_answer()
                try:
                    block = response.raw.read1(_READ_BLOCK, decode_content=True)
                except ProtocolError as err:
                    raise requests.exceptions.ChunkedEncodingError(err) from err
                except DecodeError as err:
                    raise requests.exceptions.ContentDecodingError(err) from err
                except ReadTimeoutError as err:
                    raise requests.exceptions.ConnectionError(err) from err
                except SSLError as err:
                    raise requests.exceptions.SSLError(err) from err
                if not block:
                    break
                total += len(block)
                if total > limit:
                    raise ResponseTooLargeError(
                        self.clean(
                            f"{what}: the answer from {url} is longer than max_response_bytes={limit}; stopped reading. "
                            "Fix: raise max_response_bytes in the connection if such answers are expected."
                        ),
                        http_status=response.status_code,
                        attempts=attempts,
                    )
                blocks.append(block)
        except BaseException:
            response.close()  # not given back to the pool: the rest of the body is still on the wire
            raise
        response._content = b"".join(blocks)
        response._content_consumed = True  # type: ignore[attr-defined]
        response.close()  # everything read: the connection goes back to the pool

    def _pause(self, seconds: float) -> None:
        if self.stopping.wait(max(0.0, seconds)):
            raise KubeAIEndpointError("stopped while waiting to retry (task killed)")

    def _check_stopping(self, what: str) -> None:
        if self.stopping.is_set():
            raise KubeAIEndpointError(f"{what}: stopped (task killed)")

    # -- API ---------------------------------------------------------------------------------

    def list_models(self, feature: str | None = "SpeechToText") -> list[dict[str, Any]]:
        """Models KubeAI serves with that feature (KubeAI lists only TextGeneration by default)."""
        params = {"feature": feature} if feature else {}
        response, _ = self.request("GET", "models", params=params, what="list models")
        self._raise_for_status(response, "list models")
        try:
            data = response.json()["data"] if response.status_code == 200 else None
            if not isinstance(data, list):
                raise TypeError(data)
        except (ValueError, KeyError, TypeError) as err:
            raise MalformedResponseError(
                self.clean(
                    f"list models: {response.url} did not answer with a model list (HTTP {response.status_code}): "
                    f"{self.excerpt(response)}"
                ),
                http_status=response.status_code,
            ) from err
        return list(data)

    def transcribe(
        self, model: str, audio: AudioSource, *, filename: str | None = None, **settings: Any
    ) -> TranscriptionResult:
        """:meth:`send` with the settings as keywords (those of :class:`~..speech.TranscriptionRequest`)."""
        return self.send(audio, TranscriptionRequest(model, **settings), filename=filename)

    def send(
        self, audio: AudioSource, request: TranscriptionRequest, *, filename: str | None = None
    ) -> TranscriptionResult:
        """POST one audio file to ``/audio/transcriptions`` as a streamed multipart upload.

        Memory stays flat whatever the file size: the file is read in blocks while sending.
        The request's chunking is not applied here (the hook and the batch split long recordings).
        """
        model, response_format = request.model, request.response_format
        opener, name = audio_opener(audio, filename)
        fields: list[tuple[str, Any]] = list(request.form_fields())
        uploads: list[Any] = []
        what = f"transcribe {name!r} with model {model!r}"

        def read_error(err: BaseException) -> Exception:
            return AudioReadError(
                self.clean(f"{what}: reading the audio failed: {type(err).__name__}: {_safe(err)}")
            )

        def body(check: Callable[[], None]) -> tuple[Any, dict[str, str]]:
            from airflow_provider_kubeai_speech.hooks.multipart import MultipartUpload

            try:
                stream = opener()
            except (OSError, KubeAISpeechError):
                raise
            except Exception as err:  # a storage backend's own error type
                raise read_error(err) from err
            upload = MultipartUpload(
                fields, "file", name, _audio_type(name), stream, check=check, read_error=read_error
            )
            uploads.append(upload)
            return upload, {"Content-Type": upload.content_type}

        started = time.monotonic()
        response, attempts = self.request("POST", "audio/transcriptions", body=body, what=what)
        try:
            self._raise_for_status(response, what, model=model)
            result = self.parse_transcription(response, response_format, what)
        except (KubeAIEndpointError, ModelNotFoundError) as err:
            err.attempts = attempts
            raise
        sent = uploads[-1].sent if uploads else 0
        result.attempts, result.bytes_sent, result.seconds = attempts, sent, time.monotonic() - started
        return result

    def parse_transcription(
        self, response: requests.Response, response_format: str, what: str
    ) -> TranscriptionResult:
        """The transcript in a 200 answer whose body has the shape of ``response_format``.

        :raises MalformedResponseError: any other status below 300, or a body that is not a
            transcript in that format (an HTML page, a JSON error, cues that do not parse...).
        """
        from airflow_provider_kubeai_speech.transcription.answers import NotATranscript, parse_transcript

        status = response.status_code
        if status != 200:
            raise MalformedResponseError(
                self.clean(
                    f"{what}: HTTP {status} is not a transcript (only 200 with a {response_format} body is): "
                    f"{self.excerpt(response)}"
                ),
                http_status=status,
            )
        content_type = response.headers.get("Content-Type", "")
        charset = "charset=" in content_type.lower() and response.encoding
        content = response.content.decode(charset or "utf-8", "replace")
        try:
            data = parse_transcript(response_format, content, content_type)
        except NotATranscript as err:
            raise MalformedResponseError(
                self.clean(f"{what}: {err}: {self.excerpt(response)}"), http_status=status
            ) from err
        return TranscriptionResult(content=content, response_format=response_format, data=data)

    def _raise_for_status(self, response: requests.Response, what: str, model: str | None = None) -> None:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("Location")
            where = f"to {self.clean(location)!r}" if location else "without a Location"
            raise EndpointRedirectError(
                self.clean(
                    f"{what}: HTTP {status}, a redirect {where}: redirects are never followed (the token and the "
                    f"upload go only to {self.base_url}). Fix: set the connection's host to the URL that answers "
                    "directly."
                ),
                http_status=status,
                location=self.clean(location) if location else None,
            )
        if status < 400:
            return
        detail = self.excerpt(response)
        if status == 404 and model is not None:
            raise ModelNotFoundError(
                self.clean(
                    f"{what}: KubeAI has no model {model!r} (HTTP 404: {detail}). Fix: check model_name, that the Model "
                    "exists in KubeAI's own namespace, and that it has the SpeechToText feature."
                )
            )
        if status in (401, 403):
            raise KubeAIEndpointError(
                self.clean(
                    f"{what}: HTTP {status} from KubeAI's endpoint: {detail}. Fix: check the connection's password (the bearer token of the gateway in front of KubeAI)."
                ),
                http_status=status,
            )
        retryable = status in RETRY_STATUSES or status == 429
        note = " after retries" if status in RETRY_STATUSES else ""
        raise KubeAIEndpointError(
            self.clean(f"{what}: HTTP {status}{note}: {detail}"), http_status=status, retryable=retryable
        )

    def excerpt(self, response: requests.Response) -> str:
        """The start of the body, on one line, credentials redacted, control characters escaped."""
        text = response.content[: _BODY_EXCERPT * 4].decode("utf-8", "replace")
        text = printable(" ".join(redact(text, self._secrets).split()))
        return (text[:_BODY_EXCERPT] + "...") if len(text) > _BODY_EXCERPT else (text or "<empty body>")


def _safe(err: BaseException) -> str:
    return str(err)[:_BODY_EXCERPT]


def _rewind(files: Any) -> None:
    # requests rebuilds a files= body on every call, from file objects the last attempt consumed
    values = list(files.values()) if isinstance(files, Mapping) else [item[1] for item in files or ()]
    for value in values:
        handle = value[1] if isinstance(value, tuple) and len(value) > 1 else value
        if hasattr(handle, "seek"):
            handle.seek(0)


def _close(data: Any) -> None:
    from airflow_provider_kubeai_speech.hooks.multipart import MultipartUpload

    if isinstance(data, MultipartUpload):
        data.close()


def _reason(aborted: Any, attempts: int) -> Exception:
    """The provider error an :class:`~.multipart.UploadAborted` carries, with the attempts made."""
    reason: Exception = aborted.reason
    if isinstance(reason, KubeAIEndpointError):
        reason.attempts = attempts
    return reason


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port filled in for http and https."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


class _Deadline:
    """The overall time limit of one attempt, checked while uploading and while reading the answer."""

    def __init__(self, client: SpeechEndpointClient, what: str, url: str, attempt: int) -> None:
        self.client, self.what, self.url, self.attempt = client, what, url, attempt
        self.started = time.monotonic()
        self.upload: Any = None

    def _uploaded(self) -> int:
        return int(getattr(self.upload, "sent", 0) or 0)

    def _error(self, during: str) -> RequestDeadlineError:
        allowed = self.client.allowed_seconds(self._uploaded())
        setting = (
            f"total_timeout={self.client.total_timeout:g}"
            if self.client.total_timeout is not None
            else f"the default total_timeout of connect_timeout + 2 x read_timeout + 1 s per 256 KiB uploaded ({allowed:.0f} s)"
        )
        return RequestDeadlineError(
            self.client.clean(
                f"{self.what}: attempt {self.attempt} took longer than {setting} ({during}, "
                f"{time.monotonic() - self.started:.1f} s). Fix: raise total_timeout in the connection if this endpoint "
                "is expected to be that slow."
            ),
            attempts=self.attempt,
        )

    def check_upload(self) -> None:
        from airflow_provider_kubeai_speech.hooks.multipart import UploadAborted

        if time.monotonic() - self.started > self.client.allowed_seconds(self._uploaded()):
            raise UploadAborted(self._error("while uploading"))

    def check_answer(self) -> None:
        if time.monotonic() - self.started > self.client.allowed_seconds(self._uploaded()):
            raise self._error("while reading the answer")


def _audio_type(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "wav": "audio/wav",
        "flac": "audio/flac",
        "mp3": "audio/mpeg",
        "m4a": "audio/mp4",
        "aac": "audio/aac",
        "ogg": "audio/ogg",
        "opus": "audio/ogg",
        "webm": "audio/webm",
    }.get(ext, "application/octet-stream")
