"""KubeAI's HTTP endpoint: one pooled session, retries, streaming multipart uploads.

Retries: connection errors, timeouts, truncated bodies and 500/502/503/504 are retried with
exponential backoff and jitter (urllib3's ``Retry`` does the arithmetic and reads
``Retry-After``); other 4xx never are. The request body is rebuilt for every attempt, since a
streamed upload cannot be rewound, which is why the loop is driven here rather than inside urllib3.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from airflow_provider_kubeai_speech.exceptions import (
    KubeAIEndpointError,
    MalformedResponseError,
    ModelNotFoundError,
)
from airflow_provider_kubeai_speech.transcription.formats import RESPONSE_FORMATS

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RETRY_AFTER = 120.0
_BODY_EXCERPT = 300

#: Something the hook can upload: a local path, bytes, or a callable opening a fresh binary stream
#: (ObjectStoragePath objects and other ``.open()``-able paths are accepted too).
AudioSource = str | os.PathLike[str] | bytes | Callable[[], BinaryIO] | Any


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


@dataclass
class TranscriptionResult:
    """One transcription as KubeAI answered it.

    :param content: the body as text (JSON text for the json formats).
    :param response_format: the format asked for.
    :param data: the parsed JSON for ``json`` and ``verbose_json``.
    :param attempts: requests made, retries included.
    :param bytes_sent: size of the audio uploaded (last attempt).
    :param seconds: wall time, retries included.
    :param pieces: for a long recording sent in pieces, one record per piece (start, end, attempts).
    """

    content: str
    response_format: str
    data: dict[str, Any] | None = None
    attempts: int = 1
    bytes_sent: int = 0
    seconds: float = 0.0
    pieces: list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The transcript text (for srt/vtt: the subtitle document)."""
        return str(self.data["text"]) if self.data is not None else self.content


class SpeechEndpointClient:
    """Talks to ``<base_url>/models`` and ``<base_url>/audio/transcriptions``.

    :param base_url: e.g. ``http://kubeai.kubeai.svc.cluster.local/openai/v1``.
    :param token: bearer token for a gateway in front of KubeAI (never logged).
    :param verify: TLS verification: True, False or a CA bundle path.
    :param connect_timeout: seconds to connect.
    :param read_timeout: seconds to wait for an answer (allow for a cold start).
    :param retry: retry settings.
    :param pool_size: pooled connections (at least the batch concurrency).
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.verify = verify
        self.timeout = (connect_timeout, read_timeout)
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
                session.verify = self.verify
                # Environment proxies are resolved once here: with trust_env on, requests re-reads
                # the whole environment on every request (13 % of the client's CPU in a batch).
                session.proxies = requests.utils.get_environ_proxies(self.base_url)
                session.trust_env = False
                session.headers["User-Agent"] = "airflow-provider-kubeai-speech"
                if self._token:
                    session.headers["Authorization"] = f"Bearer {self._token}"
                self._session = session
            return self._session

    def close(self) -> None:
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def url(self, path: str | None) -> str:
        if path and "://" in path:
            return path
        return f"{self.base_url}/{(path or '').lstrip('/')}"

    # -- requests with retries ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str | None,
        *,
        body: Callable[[], tuple[Any, dict[str, str]]] | None = None,
        what: str = "request",
        **kwargs: Any,
    ) -> tuple[requests.Response, int]:
        """Send with retries; return the final response (any status) and the attempts made.

        :param body: builds ``(data, headers)`` afresh for each attempt (streamed bodies are single-use).
        :raises KubeAIEndpointError: when every attempt failed to get an answer.
        """
        import requests
        from urllib3.exceptions import MaxRetryError
        from urllib3.util.retry import Retry

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
        kwargs.setdefault("timeout", self.timeout)
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE in the environment.
        kwargs.setdefault("verify", self.verify)
        fixed_data = kwargs.pop("data", None)
        extra_headers = dict(kwargs.pop("headers", None) or {})
        attempts = 0
        while True:
            attempts += 1
            self._check_stopping(what)
            _rewind(kwargs.get("files"))
            data, headers = body() if body is not None else (fixed_data, {})
            try:
                response = self.session.request(
                    method, url, data=data, headers={**headers, **extra_headers}, **kwargs
                )
                response.content  # noqa: B018 - read now so a truncated body is retried like a dropped connection
            except requests.exceptions.SSLError as err:
                _close(data)
                raise KubeAIEndpointError(
                    f"{what}: TLS verification of {url} failed: {_safe(err)}. Fix: put the CA that signed the "
                    "endpoint's certificate in the connection's ca_bundle extra (verify_ssl=false turns checking off; not recommended)."
                ) from None
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
                        f"{what}: no answer from {url} after {attempts} attempt(s): {type(err).__name__}: {_safe(err)}",
                        retryable=True,
                        attempts=attempts,
                    ) from None
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
        _raise_for_status(response, "list models")
        try:
            data = response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise MalformedResponseError(
                f"list models: {response.url} did not answer with a model list: {_excerpt(response)}"
            ) from None
        return list(data)

    def transcribe(
        self,
        model: str,
        audio: AudioSource,
        *,
        filename: str | None = None,
        response_format: str = "json",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        timestamp_granularities: Iterable[str] | None = None,
        extra_fields: Mapping[str, Any] | None = None,
    ) -> TranscriptionResult:
        """POST one audio file to ``/audio/transcriptions`` as a streamed multipart upload.

        Memory stays flat whatever the file size: the file is read in blocks while sending.
        """
        if response_format not in RESPONSE_FORMATS:
            raise KubeAIEndpointError(
                f"response_format={response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}"
            )
        opener, name = audio_opener(audio, filename)
        fields: list[tuple[str, Any]] = [("model", model), ("response_format", response_format)]
        if language:
            fields.append(("language", language))
        if prompt:
            fields.append(("prompt", prompt))
        if temperature is not None:
            fields.append(("temperature", str(temperature)))
        for granularity in timestamp_granularities or ():
            fields.append(("timestamp_granularities[]", granularity))
        for key, value in (extra_fields or {}).items():
            values = value if isinstance(value, list | tuple) else [value]
            fields.extend((key, _field_text(v)) for v in values)
        sent = [0]

        def body() -> tuple[Any, dict[str, str]]:
            from requests_toolbelt import MultipartEncoder

            stream = opener()
            encoder = MultipartEncoder(fields=[*fields, ("file", (name, stream, _audio_type(name)))])
            sent[0] = encoder.len
            return encoder, {"Content-Type": encoder.content_type}

        what = f"transcribe {name!r} with model {model!r}"
        started = time.monotonic()
        response, attempts = self.request("POST", "audio/transcriptions", body=body, what=what)
        try:
            _raise_for_status(response, what, model=model)
            result = parse_transcription(response, response_format, what)
        except (KubeAIEndpointError, ModelNotFoundError) as err:
            err.attempts = attempts  # type: ignore[union-attr]
            raise
        result.attempts, result.bytes_sent, result.seconds = attempts, sent[0], time.monotonic() - started
        return result


def audio_opener(audio: AudioSource, filename: str | None = None) -> tuple[Callable[[], BinaryIO], str]:
    """A function opening a fresh binary stream of ``audio`` (one per attempt), and its file name."""
    if isinstance(audio, bytes | bytearray):
        data = bytes(audio)
        return (lambda: io.BytesIO(data)), filename or "audio.wav"
    if callable(audio) and not hasattr(audio, "open"):
        return audio, filename or "audio.wav"
    if hasattr(audio, "open") and not isinstance(audio, str | os.PathLike):
        return (lambda: audio.open("rb")), filename or str(getattr(audio, "name", "audio.wav"))
    if isinstance(audio, str) and "://" in audio and not audio.startswith("file://"):
        from airflow.sdk import ObjectStoragePath

        remote = ObjectStoragePath(audio)
        return (lambda: remote.open("rb")), filename or remote.name
    path = str(os.fspath(cast("str | os.PathLike[str]", audio))).removeprefix("file://")
    return (lambda: open(path, "rb")), filename or os.path.basename(path)


def parse_transcription(response: requests.Response, response_format: str, what: str) -> TranscriptionResult:
    """Check a 200 answer's body against the format asked for."""
    content_type = response.headers.get("Content-Type", "")
    content = response.content.decode(response.encoding or "utf-8", "replace")
    if response_format in ("json", "verbose_json"):
        try:
            data = response.json()
        except ValueError:
            raise MalformedResponseError(
                f"{what}: expected JSON ({response_format}) but got {content_type or 'no content type'}: {_excerpt(response)}",
                http_status=200,
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise MalformedResponseError(
                f"{what}: the JSON answer has no 'text' string: {_excerpt(response)}", http_status=200
            )
        if response_format == "verbose_json" and not isinstance(data.get("segments", []), list):
            raise MalformedResponseError(
                f"{what}: verbose_json without a segments list: {_excerpt(response)}", http_status=200
            )
        return TranscriptionResult(content=content, response_format=response_format, data=data)
    if content_type.startswith("application/json") and content.lstrip().startswith("{"):
        raise MalformedResponseError(
            f"{what}: asked for {response_format} but got JSON: {_excerpt(response)}", http_status=200
        )
    if response_format == "vtt" and content and not content.startswith("WEBVTT"):
        raise MalformedResponseError(
            f"{what}: a vtt answer must start with 'WEBVTT': {_excerpt(response)}", http_status=200
        )
    return TranscriptionResult(content=content, response_format=response_format)


def _raise_for_status(response: requests.Response, what: str, model: str | None = None) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = _excerpt(response)
    if status == 404 and model is not None:
        raise ModelNotFoundError(
            f"{what}: KubeAI has no model {model!r} (HTTP 404: {detail}). Fix: check model_name, that the Model "
            "exists in KubeAI's own namespace, and that it has the SpeechToText feature."
        )
    if status in (401, 403):
        raise KubeAIEndpointError(
            f"{what}: HTTP {status} from KubeAI's endpoint: {detail}. Fix: check the connection's password (the bearer token of the gateway in front of KubeAI).",
            http_status=status,
        )
    retryable = status in RETRY_STATUSES or status == 429
    note = " after retries" if status in RETRY_STATUSES else ""
    raise KubeAIEndpointError(
        f"{what}: HTTP {status}{note}: {detail}", http_status=status, retryable=retryable
    )


def _excerpt(response: requests.Response) -> str:
    text = response.content[: _BODY_EXCERPT * 4].decode("utf-8", "replace").strip().replace("\n", " ")
    return (text[:_BODY_EXCERPT] + "...") if len(text) > _BODY_EXCERPT else (text or "<empty body>")


def _safe(err: Exception) -> str:
    return str(err)[:_BODY_EXCERPT]


def _rewind(files: Any) -> None:
    # requests rebuilds a files= body on every call, from file objects the last attempt consumed
    values = list(files.values()) if isinstance(files, Mapping) else [item[1] for item in files or ()]
    for value in values:
        handle = value[1] if isinstance(value, tuple) and len(value) > 1 else value
        if hasattr(handle, "seek"):
            handle.seek(0)


def _close(data: Any) -> None:
    fields = getattr(data, "fields", None)
    for _, value in fields or ():
        if isinstance(value, tuple) and len(value) > 1 and hasattr(value[1], "close"):
            value[1].close()


def _field_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
