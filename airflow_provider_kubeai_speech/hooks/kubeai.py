"""KubeAISpeechHook: the cluster side (Models) and the endpoint side (transcriptions) of KubeAI."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_kubeai_speech.exceptions import (
    KubeAIClusterError,
    KubeAISpeechError,
    ModelNotFoundError,
)
from airflow_provider_kubeai_speech.hooks.connection import KubeAIConnectionConfig
from airflow_provider_kubeai_speech.model_status import ModelStatus
from airflow_provider_kubeai_speech.spec import SpeechModelSpec, SpeechModelSpecError, check_update

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import requests

    from airflow_provider_kubeai_speech.hooks.async_cluster import AsyncModelClient
    from airflow_provider_kubeai_speech.hooks.cluster import ModelClient
    from airflow_provider_kubeai_speech.hooks.connection import ClusterSettings
    from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings, SpeechEndpointClient
    from airflow_provider_kubeai_speech.speech import AudioSource, TranscriptionRequest, TranscriptionResult


class KubeAISpeechHook(BaseHook):
    """Interact with KubeAI speech models: serve them on the cluster and transcribe through them.

    The cluster side goes through the cncf-kubernetes connection named in this connection's
    ``kubernetes_conn_id`` extra (``kubernetes_default`` by default); the endpoint side talks to
    KubeAI's OpenAI-compatible API at the connection's host.

    :param kubeai_conn_id: a connection of type ``kubeai_speech``.
    :param namespace: KubeAI's namespace; overrides the connection's ``namespace`` extra.
    :param retry: endpoint retry settings (attempts, backoff).
    :param pool_size: pooled HTTP connections (at least the batch concurrency).
    :param max_response_bytes: the longest answer read from the endpoint; overrides the
        connection's ``max_response_bytes`` extra (default 64 MiB).
    :param total_timeout: seconds one request attempt may take, upload and answer included;
        overrides the connection's ``total_timeout`` extra (default: ``connect_timeout +
        2 * read_timeout`` plus one second per 256 KiB uploaded).
    """

    conn_name_attr = "kubeai_conn_id"
    default_conn_name = "kubeai_speech_default"
    conn_type = "kubeai_speech"
    hook_name = "KubeAI Speech"

    def __init__(
        self,
        kubeai_conn_id: str = default_conn_name,
        *,
        namespace: str | None = None,
        retry: RetrySettings | None = None,
        pool_size: int = 16,
        max_response_bytes: int | None = None,
        total_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.kubeai_conn_id = kubeai_conn_id
        self._namespace = namespace
        self._retry = retry
        self._pool_size = pool_size
        self._max_response_bytes = max_response_bytes
        self._total_timeout = total_timeout

    # -- connection --------------------------------------------------------------------------

    @cached_property
    def _connection(self) -> Any:
        """The Airflow connection, its token and any URL credentials registered with the secrets
        masker (before anything is parsed: an error about the connection must not show them)."""
        from airflow.providers.common.compat.sdk import mask_secret

        from airflow_provider_kubeai_speech.hooks.connection import credential_forms, url_credentials

        conn = self.get_connection(self.kubeai_conn_id)
        for secret in credential_forms(conn.password, url_credentials(conn.host)):
            mask_secret(secret)
        return conn

    @cached_property
    def cluster_settings(self) -> ClusterSettings:
        """What the cluster side needs of the connection (namespace, Kubernetes connection): the
        endpoint's settings are neither parsed nor checked for it."""
        from airflow_provider_kubeai_speech.hooks.connection import ClusterSettings

        conn = self._connection
        return ClusterSettings.from_extra(self.kubeai_conn_id, conn.extra_dejson if conn.extra else {})

    @cached_property
    def config(self) -> KubeAIConnectionConfig:
        """The whole connection, endpoint settings included (parsed and checked when the endpoint
        is first used)."""
        from airflow_provider_kubeai_speech.hooks.connection import response_limit

        conn = self._connection
        extra = dict(conn.extra_dejson if conn.extra else {})
        if self._max_response_bytes is not None:
            extra["max_response_bytes"] = response_limit(self.kubeai_conn_id, self._max_response_bytes)
        if self._total_timeout is not None:
            extra["total_timeout"] = self._total_timeout
        return KubeAIConnectionConfig.from_connection(
            self.kubeai_conn_id, conn.host, conn.schema, conn.port, conn.password, extra
        )

    @property
    def namespace(self) -> str:
        return self._namespace or self.cluster_settings.namespace

    @property
    def base_url(self) -> str:
        """KubeAI's OpenAI-compatible base URL (``.../openai/v1``)."""
        return self.config.base_url

    # -- cluster side ------------------------------------------------------------------------

    @cached_property
    def kubernetes_hook(self) -> Any:
        """The cncf-kubernetes ``KubernetesHook`` of the referenced connection."""
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        return KubernetesHook(conn_id=self.cluster_settings.kubernetes_conn_id)

    @cached_property
    def models(self) -> ModelClient:
        from airflow_provider_kubeai_speech.hooks.cluster import ModelClient

        return ModelClient(self.kubernetes_hook.api_client, self.namespace)

    def render_manifest(
        self,
        spec: SpeechModelSpec,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The Model manifest of ``spec`` in this hook's namespace.

        :param labels: extra labels (e.g. Airflow dag/task ids).
        :param annotations: extra annotations.
        """
        return spec.to_manifest(self.namespace, extra_labels=labels, annotations=annotations)

    def apply_model(
        self,
        spec: SpeechModelSpec | Mapping[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        existing: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create or update a Model by server-side apply (idempotent: re-applying changes nothing).

        :param spec: a :class:`SpeechModelSpec`, or a full Model manifest.
        :param labels: extra labels (e.g. Airflow dag/task ids).
        :param annotations: extra annotations.
        :param existing: the Model as last read, when the caller has it: a change KubeAI refuses
            on an existing Model (its CRD's update rules) is refused before the request.
        :raises SpeechModelSpecError: the update would change what KubeAI keeps immutable.
        :return: the Model as stored.
        """
        manifest = (
            self.render_manifest(spec, labels=labels, annotations=annotations)
            if isinstance(spec, SpeechModelSpec)
            else dict(spec)
        )
        if existing is not None:
            check_update(existing.get("spec", {}), manifest["spec"])
        try:
            return self.models.apply(manifest)
        except KubeAIClusterError as err:
            if err.status == 422:
                self._explain_update_refusal(manifest)
            raise

    def _explain_update_refusal(self, manifest: Mapping[str, Any]) -> None:
        existing, _ = self.models.find(manifest["metadata"]["name"])
        if existing is not None:
            try:
                check_update(existing.get("spec", {}), manifest["spec"])
            except SpeechModelSpecError as err:
                raise KubeAISpeechError(str(err)) from err

    def get_model(self, name: str) -> dict[str, Any]:
        """The Model object.

        :raises ModelNotFoundError: when it does not exist.
        """
        return self.models.get(name)

    def find_model(self, name: str) -> dict[str, Any] | None:
        """The Model object, or None."""
        return self.models.find(name)[0]

    def list_model_resources(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        """The Model resources in KubeAI's namespace (Kubernetes objects), optionally by label
        selector. For what the endpoint serves, see :meth:`list_served_models`."""
        return self.models.list(label_selector)

    def list_model_objects(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        """Deprecated alias of :meth:`list_model_resources` (removed in the next release)."""
        _deprecated("list_model_objects", "list_model_resources")
        return self.list_model_resources(label_selector)

    def delete_model(
        self, name: str, *, ignore_not_found: bool = True, wait: bool = False, timeout: float = 120
    ) -> bool:
        """Delete a Model (KubeAI removes its pods and its cache).

        :param ignore_not_found: a missing Model is not an error.
        :param wait: wait until it is gone.
        :return: whether it existed.
        """
        existed = self.models.delete(name, ignore_not_found=ignore_not_found)
        if existed and wait:
            try:
                self.models.wait_for(
                    name, lambda m: m is None, timeout=timeout, what=f"delete Model {self.namespace}/{name}"
                )
            except TimeoutError as err:
                raise KubeAISpeechError(
                    f"KubeAI Model {self.namespace}/{name} was still present {timeout:g} s after deletion (a finalizer?)."
                ) from err
        return existed

    def scale_model(self, name: str, replicas: int, *, min_replicas: int | None = None) -> dict[str, Any]:
        """Set ``spec.replicas`` (and ``minReplicas``). Scaling to zero keeps KubeAI's model cache.

        When ``min_replicas`` is not given, the user's minimum that a serve task recorded on the
        Model comes back (see :mod:`~airflow_provider_kubeai_speech.capacity`), and a minimum above
        ``replicas`` is lowered to it; otherwise KubeAI's autoscaler would scale straight back up.
        """
        from airflow_provider_kubeai_speech.capacity import min_replicas_after_teardown

        current = self.get_model(name)
        if min_replicas is None:
            min_replicas = min_replicas_after_teardown(current, replicas)
        return self.models.scale(name, replicas, min_replicas)

    def model_status(self, name: str) -> ModelStatus:
        """Readiness of a Model from its status (replicas, cache)."""
        return ModelStatus.from_model(self.get_model(name))

    def wait_for_ready(
        self,
        name: str,
        min_ready_replicas: int = 1,
        timeout: float = 900,
        *,
        missing_ok: bool = False,
        on_status: Callable[[ModelStatus | None], None] | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> ModelStatus:
        """Block until the Model has ``min_ready_replicas`` ready (and its cache loaded).

        Built on a watch from the last resourceVersion (no polling loop): returns within moments
        of readiness, survives dropped streams and 410 Gone.

        :param missing_ok: keep waiting while the Model does not exist (instead of failing).
        :param on_status: called with each new status (e.g. to log progress).
        :raises ReadinessTimeoutError: at the deadline.
        :raises ModelDeletedError: when the Model is (or becomes) absent and ``missing_ok`` is off.
        """
        from airflow_provider_kubeai_speech.hooks.cluster import readiness, readiness_timeout

        tracker = StatusTracker(on_status)
        condition = readiness(min_ready_replicas, missing_ok=missing_ok, name=name, namespace=self.namespace)
        try:
            model = self.models.wait_for(
                name,
                condition,
                timeout=timeout,
                what=f"wait for Model {self.namespace}/{name}",
                on_change=tracker,
                stop=stop,
                connect_timeout=self.cluster_settings.connect_timeout,
            )
        except TimeoutError as err:
            raise readiness_timeout(name, self.namespace, tracker.last, min_ready_replicas, timeout) from err
        assert model is not None
        return ModelStatus.from_model(model)

    # -- cluster side, async (for triggers) ----------------------------------------------------

    def _async_kubernetes_hook(self) -> Any:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

        return AsyncKubernetesHook(conn_id=self.cluster_settings.kubernetes_conn_id)

    async def _with_async_models(self, use: Callable[[AsyncModelClient], Any]) -> Any:
        from airflow_provider_kubeai_speech.hooks.async_cluster import AsyncModelClient

        async with self._async_kubernetes_hook().get_conn() as api_client:
            return await use(AsyncModelClient(api_client, self.namespace))

    async def async_find_model(self, name: str) -> dict[str, Any] | None:
        """Async :meth:`find_model`."""
        return await self._with_async_models(lambda models: _first(models.find(name)))

    async def async_model_status(self, name: str) -> ModelStatus:
        """Async :meth:`model_status`."""
        model = await self.async_find_model(name)
        if model is None:
            raise ModelNotFoundError(f"KubeAI Model {name!r} does not exist in namespace {self.namespace!r}.")
        return ModelStatus.from_model(model)

    async def async_delete_model(self, name: str, *, ignore_not_found: bool = True) -> bool:
        """Async :meth:`delete_model` (no wait)."""
        return await self._with_async_models(
            lambda models: models.delete(name, ignore_not_found=ignore_not_found)
        )

    async def async_wait_for_ready(
        self,
        name: str,
        min_ready_replicas: int = 1,
        timeout: float = 900,
        *,
        missing_ok: bool = False,
        on_status: Callable[[ModelStatus | None], None] | None = None,
    ) -> ModelStatus:
        """Async :meth:`wait_for_ready` (watch-based, on ``kubernetes_asyncio``)."""
        from airflow_provider_kubeai_speech.hooks.cluster import readiness, readiness_timeout

        tracker = StatusTracker(on_status)
        condition = readiness(min_ready_replicas, missing_ok=missing_ok, name=name, namespace=self.namespace)
        try:
            model = await self._with_async_models(
                lambda models: models.wait_for(
                    name,
                    condition,
                    timeout=timeout,
                    what=f"wait for Model {self.namespace}/{name}",
                    on_change=tracker,
                )
            )
        except TimeoutError as err:
            raise readiness_timeout(name, self.namespace, tracker.last, min_ready_replicas, timeout) from err
        return ModelStatus.from_model(model)

    # -- endpoint side -----------------------------------------------------------------------

    @cached_property
    def endpoint(self) -> SpeechEndpointClient:
        """The pooled HTTP client of KubeAI's endpoint."""
        from airflow_provider_kubeai_speech.hooks.endpoint import SpeechEndpointClient

        cfg = self.config
        return SpeechEndpointClient(
            cfg.base_url,
            token=cfg.token,
            verify=cfg.verify,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            retry=self._retry,
            pool_size=self._pool_size,
            basic_auth=cfg.basic_auth,
            max_response_bytes=cfg.max_response_bytes,
            total_timeout=cfg.total_timeout,
        )

    def list_served_models(self, feature: str | None = "SpeechToText") -> list[dict[str, Any]]:
        """The models KubeAI's endpoint serves with ``feature`` (``GET /models?feature=...``). For
        the Model resources in the cluster, see :meth:`list_model_resources`."""
        return self.endpoint.list_models(feature)

    def list_models(self, feature: str | None = "SpeechToText") -> list[dict[str, Any]]:
        """Deprecated alias of :meth:`list_served_models` (removed in the next release)."""
        _deprecated("list_models", "list_served_models")
        return self.list_served_models(feature)

    def transcribe(
        self,
        model: str | None = None,
        audio: AudioSource = None,
        *,
        filename: str | None = None,
        response_format: str = "json",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        timestamp_granularities: Iterable[str] | None = None,
        extra_fields: Mapping[str, Any] | None = None,
        chunk_seconds: float | None = None,
        chunk_overlap_seconds: float = 2.0,
        max_concurrency: int = 4,
        request: TranscriptionRequest | None = None,
    ) -> TranscriptionResult:
        """Transcribe one recording (streamed upload; retried on transient failures).

        With ``chunk_seconds``, a recording longer than that is decoded, cut at pauses into
        overlapping pieces, the pieces transcribed ``max_concurrency`` at a time, and the results
        stitched into one transcript with times on the whole recording's clock.

        :param model: the Model name (``name_adapter`` selects an adapter).
        :param audio: a local path, a URI (any ObjectStoragePath scheme), bytes, or a callable
            opening a fresh binary stream.
        :param response_format: ``json``, ``text``, ``srt``, ``verbose_json`` or ``vtt``.
        :param extra_fields: more multipart fields (e.g. ``{"hotwords": "KubeAI", "vad_filter": True}``).
        :param chunk_seconds: split recordings longer than this (needs the ``audio`` extra); None sends them whole.
        :param chunk_overlap_seconds: audio neighbouring pieces share around each cut.
        :param max_concurrency: pieces in flight at once.
        :param request: all the settings as one :class:`~..speech.TranscriptionRequest` (then
            ``model`` and the setting keywords are not given).
        """
        from airflow_provider_kubeai_speech.speech import TranscriptionRequest

        settings = {
            "response_format": (response_format, "json"),
            "language": (language, None),
            "prompt": (prompt, None),
            "temperature": (temperature, None),
            "timestamp_granularities": (timestamp_granularities, None),
            "extra_fields": (extra_fields, None),
            "chunk_seconds": (chunk_seconds, None),
            "chunk_overlap_seconds": (chunk_overlap_seconds, 2.0),
        }
        if request is not None:
            given = [name for name, (value, default) in settings.items() if value != default]
            if model is not None and model != request.model:
                given.insert(0, "model")
            if given:
                raise KubeAISpeechError(
                    f"transcribe: request= carries every setting, but {', '.join(given)} "
                    f"{'was' if len(given) == 1 else 'were'} given too and would be ignored. Fix: "
                    f"request.but({', '.join(f'{name}=...' for name in given if name != 'model')}) "
                    "or the keywords alone."
                )
        if request is None:
            if model is None:
                raise KubeAISpeechError(
                    "transcribe: give the model (or a request). Fix: transcribe('whisper', audio)."
                )
            request = TranscriptionRequest(
                model,
                response_format=response_format,
                language=language,
                prompt=prompt,
                temperature=temperature,
                timestamp_granularities=timestamp_granularities,
                extra_fields=extra_fields,
                chunk_seconds=chunk_seconds,
                chunk_overlap_seconds=chunk_overlap_seconds,
            )
        if audio is None:
            raise KubeAISpeechError("transcribe: no audio given. Fix: a path, URI, bytes or a callable.")
        if request.chunk_seconds is not None:
            from airflow_provider_kubeai_speech.transcription.long_audio import transcribe_long_recording
            from airflow_provider_kubeai_speech.transcription.sources import audio_opener

            opener, name = audio_opener(audio, filename)
            long = transcribe_long_recording(
                self.endpoint, opener, name, request, parallel=max_concurrency, log=self.log
            )
            if long is not None:
                return long.to_result(request.response_format)
        return self.endpoint.send(audio, request, filename=filename)

    def invoke(
        self, model_name: str, method: str = "POST", url: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """DigitalHub's kubeai-speech function's generic call: a request to KubeAI's endpoint for ``model_name``.

        Unlike DigitalHub's kubeai-speech function, the default is ``POST audio/transcriptions`` (the speech API),
        and an upload is never sent as GET. ``model`` is added to the form or JSON body when absent.
        Redirects are not followed (a 3xx is returned as it is), the answer is read in full within
        the size limit and the deadline, and the connection's token goes only to its own origin:
        an absolute ``url`` to another host is sent without it.

        :param url: path relative to the base URL (e.g. ``"audio/transcriptions"``) or absolute.
        :param kwargs: passed to ``requests`` (``files``, ``data``, ``json``, ``params``, ``timeout``).
        :return: the response (any status; retries already applied to 5xx and dropped connections).
        """
        method = method.upper()
        if method == "GET" and (kwargs.get("files") or kwargs.get("data") or kwargs.get("json") is not None):
            raise KubeAISpeechError(
                "invoke: a request with a body (files/data/json) must not be sent as GET. Fix: method='POST'."
            )
        if method != "GET":
            if kwargs.get("json") is not None:
                kwargs["json"] = {"model": model_name, **kwargs["json"]}
            else:
                data = dict(kwargs.get("data") or {})
                data.setdefault("model", model_name)
                kwargs["data"] = data
        else:
            kwargs.setdefault("params", {})
        response, _ = self.endpoint.request(
            method,
            url or "audio/transcriptions",
            what=f"invoke {method} {url or 'audio/transcriptions'}",
            **kwargs,
        )
        return response

    # -- connection test ---------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check both sides: Models in the namespace (Kubernetes API) and ``/models`` (KubeAI)."""
        results = []
        ok = True
        try:
            count = len(self.models.list())
            results.append(f"Kubernetes API: ok ({count} Model(s) in namespace {self.namespace!r})")
        except Exception as err:
            ok = False
            results.append(f"Kubernetes API: failed: {self._clean(err)}")
        try:
            served = self.list_served_models()
            results.append(f"KubeAI endpoint: ok ({len(served)} speech model(s) at {self.base_url})")
        except Exception as err:
            ok = False
            results.append(f"KubeAI endpoint: failed: {self._clean(err)}")
        return ok, "; ".join(results)

    def _clean(self, err: object) -> str:
        from airflow_provider_kubeai_speech.text_safety import printable

        try:
            return self.endpoint.clean(err)
        except Exception:  # the connection itself is what failed
            return printable(err)

    def close(self) -> None:
        """Release what the hook opened (the endpoint's session, the Kubernetes API client) now,
        not at garbage collection. Idempotent, and creates nothing: a hook that opened nothing
        closes nothing. Retries still waiting stop; the hook opens new clients if used again."""
        endpoint = self.__dict__.pop("endpoint", None)
        if endpoint is not None:
            endpoint.stopping.set()
            endpoint.close()
        self.__dict__.pop("models", None)
        kubernetes_hook = self.__dict__.pop("kubernetes_hook", None)
        api_client = kubernetes_hook.__dict__.pop("api_client", None) if kubernetes_hook is not None else None
        if api_client is not None:
            api_client.close()

    def __enter__(self) -> KubeAISpeechHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class StatusTracker:
    """Remembers the last status seen and reports each change (used by both waits).

    :param on_status: called with every new status (None while the Model does not exist).
    """

    def __init__(self, on_status: Callable[[ModelStatus | None], None] | None) -> None:
        self.on_status = on_status
        self.last: ModelStatus | None = None

    def __call__(self, model: dict[str, Any] | None) -> None:
        status = ModelStatus.from_model(model) if model is not None else None
        if status != self.last and self.on_status is not None:
            self.on_status(status)
        self.last = status


def _deprecated(old: str, new: str) -> None:
    import warnings

    from airflow.exceptions import AirflowProviderDeprecationWarning

    warnings.warn(
        f"KubeAISpeechHook.{old}() is deprecated; use {new}() (same arguments and result).",
        AirflowProviderDeprecationWarning,
        stacklevel=3,
    )


async def _first(pair: Any) -> Any:
    model, _ = await pair
    return model
