"""InvokeSpeechOperator: transcribe one recording or a whole batch through a KubeAI speech model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.operators.templating import KeepTrailingNewlines
from airflow_provider_kubeai_speech.transcription.formats import RESPONSE_FORMATS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
    from airflow_provider_kubeai_speech.transcription.batch import BatchTranscriber


class InvokeSpeechOperator(KeepTrailingNewlines, BaseOperator):
    """Transcribe audio with a KubeAI speech model: one file, a list, a glob or a folder, local or remote.

    Up to ``max_concurrency`` streamed uploads run at once over one pooled connection; transient
    failures are retried per file; each transcript is written atomically next to a JSONL results
    manifest (``_transcriptions.jsonl``) as soon as it arrives. With ``skip_existing`` a rerun after
    a crash or kill sends only what is missing. ``max_failed`` decides when the task fails; the
    failure lists what failed and why, and every finished transcript stays written.

    Returns a small summary to XCom: counts, ``output_uri``, ``manifest_uri`` and the first
    failures (plus the transcripts themselves when there is no ``output_path``).

    :param model_name: the Model (templated: e.g. ``"{{ ti.xcom_pull('serve')['model'] }}"``).
    :param audio: a path or URI (any ObjectStoragePath scheme), a glob (``/data/*.wav``,
        ``s3://bucket/calls/**/*.mp3``), a folder, or a list of those (templated; a list from XCom works).
    :param output_path: folder (local or URI) for one transcript per input, ``<stem>.<ext>``;
        without it transcripts go to XCom, for at most ``max_xcom_files`` inputs.
    :param response_format: ``json`` (default), ``text``, ``srt``, ``verbose_json`` or ``vtt``.
    :param language: language of the speech (e.g. ``"en"``), or None to detect.
    :param prompt: text to guide decoding (names, jargon).
    :param temperature: sampling temperature.
    :param timestamp_granularities: ``["segment"]``, ``["word"]`` or both (with ``verbose_json``).
    :param extra_fields: more form fields KubeAI's engine takes (e.g. ``{"hotwords": "KubeAI", "vad_filter": True}``).
    :param max_concurrency: uploads in flight at once (size it to ready replicas x their concurrency).
    :param max_attempts: attempts per file on transient failures (connection errors, 5xx).
    :param skip_existing: do not transcribe inputs whose transcript already exists.
    :param max_failed: failures tolerated: a count, or a fraction of the batch when below 1.
    :param max_xcom_files: largest batch allowed without ``output_path``.
    :param progress_interval: seconds between progress lines in the log.
    :param chunk_seconds: recordings longer than this many seconds are decoded, cut at pauses into
        pieces about this long, the pieces transcribed in parallel (within ``max_concurrency``) and
        stitched into one transcript with times on the whole recording's clock; e.g. ``300``.
        None (default) sends every recording whole. Needs the ``audio`` extra (PyAV).
    :param chunk_overlap_seconds: audio neighbouring pieces share around each cut (default 2 s);
        words in the overlap are kept once, from the piece they are central to.
    :param namespace: KubeAI's namespace (default: the connection's).
    :param kubeai_conn_id: the ``kubeai_speech`` connection.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "audio",
        "output_path",
        "response_format",
        "language",
        "prompt",
        "temperature",
        "timestamp_granularities",
        "extra_fields",
        "max_concurrency",
        "max_attempts",
        "max_failed",
        "chunk_seconds",
        "chunk_overlap_seconds",
        "namespace",
        "kubeai_conn_id",
    )
    template_fields_renderers = {"audio": "json", "extra_fields": "json"}
    ui_color = "#e8e0f5"

    def __init__(
        self,
        *,
        model_name: str,
        audio: str | list[str] | Any,
        output_path: str | None = None,
        response_format: str = "json",
        language: str | None = None,
        prompt: str | None = None,
        temperature: float | None = None,
        timestamp_granularities: list[str] | None = None,
        extra_fields: Mapping[str, Any] | None = None,
        max_concurrency: int = 4,
        max_attempts: int = 5,
        skip_existing: bool = True,
        max_failed: float = 0,
        max_xcom_files: int = 100,
        progress_interval: float = 15.0,
        chunk_seconds: float | None = None,
        chunk_overlap_seconds: float = 2.0,
        namespace: str | None = None,
        kubeai_conn_id: str = "kubeai_speech_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.audio = audio
        self.output_path = output_path
        self.response_format = response_format
        self.language = language
        self.prompt = prompt
        self.temperature = temperature
        self.timestamp_granularities = timestamp_granularities
        self.extra_fields = extra_fields
        self.max_concurrency = max_concurrency
        self.max_attempts = max_attempts
        self.skip_existing = skip_existing
        self.max_failed = max_failed
        self.max_xcom_files = max_xcom_files
        self.progress_interval = progress_interval
        self.chunk_seconds = chunk_seconds
        self.chunk_overlap_seconds = chunk_overlap_seconds
        self.namespace = namespace
        self.kubeai_conn_id = kubeai_conn_id
        self._batch: BatchTranscriber | None = None
        self._hook: KubeAISpeechHook | None = None
        self._lineage: tuple[list[Any], Any] = ([], None)

    def _check_arguments(self) -> tuple[int, int, float]:
        """Every argument error, before anything is read or sent."""
        if self.response_format not in RESPONSE_FORMATS:
            raise KubeAISpeechError(
                f"response_format={self.response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}. Fix: e.g. response_format='srt'."
            )
        for granularity in self.timestamp_granularities or []:
            if granularity not in ("segment", "word"):
                raise KubeAISpeechError(
                    f"timestamp_granularities has {granularity!r}. Fix: use 'segment' and/or 'word'."
                )
        try:
            concurrency, attempts, max_failed = (
                int(self.max_concurrency),
                int(self.max_attempts),
                float(self.max_failed),
            )
        except (TypeError, ValueError) as err:
            raise KubeAISpeechError(
                f"max_concurrency, max_attempts and max_failed must be numbers: {err}"
            ) from None
        if concurrency < 1 or attempts < 1 or max_failed < 0:
            raise KubeAISpeechError(
                f"max_concurrency={concurrency}, max_attempts={attempts}, max_failed={max_failed}: the first two must be >= 1 "
                "and max_failed >= 0 (a count, or a fraction below 1)."
            )
        if not self.model_name or not isinstance(self.model_name, str):
            raise KubeAISpeechError(
                f"model_name={self.model_name!r}. Fix: the KubeAI Model name, e.g. \"{{{{ ti.xcom_pull('serve')['model'] }}}}\"."
            )
        if self.audio in (None, "", []):
            raise KubeAISpeechError("audio is empty. Fix: a path, URI, glob, folder, or a list of them.")
        return concurrency, attempts, max_failed

    def hook_for(self, concurrency: int, attempts: int) -> KubeAISpeechHook:
        from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
        from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook

        return KubeAISpeechHook(
            self.kubeai_conn_id,
            namespace=self.namespace,
            retry=RetrySettings(max_attempts=attempts),
            pool_size=max(concurrency, 4),
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber
        from airflow_provider_kubeai_speech.transcription.long_audio import chunk_settings
        from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
        from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs

        concurrency, attempts, max_failed = self._check_arguments()
        chunking = chunk_settings(self.chunk_seconds, self.chunk_overlap_seconds)
        inputs = resolve_inputs(self.audio)
        if self.output_path is None and len(inputs) > int(self.max_xcom_files):
            raise KubeAISpeechError(
                f"{len(inputs)} inputs and no output_path: transcripts would go to XCom, which is for small data "
                f"(max_xcom_files={self.max_xcom_files}). Fix: set output_path to a folder or bucket for the transcripts."
            )
        output = OutputFolder(self.output_path) if self.output_path is not None else None
        options = BatchOptions(
            response_format=self.response_format,
            language=self.language,
            prompt=self.prompt,
            temperature=None if self.temperature is None else float(self.temperature),
            timestamp_granularities=list(self.timestamp_granularities)
            if self.timestamp_granularities
            else None,
            extra_fields=self.extra_fields,
            max_concurrency=concurrency,
            skip_existing=self.skip_existing,
            max_failed=max_failed,
            progress_interval=float(self.progress_interval),
            chunking=chunking,
        )
        self._hook = self.hook_for(concurrency, attempts)
        self._batch = BatchTranscriber(
            self._hook.transcribe, self.model_name, options, output, self.log, run_id=context.get("run_id")
        )
        try:
            summary = self._batch.run(inputs)
        finally:
            self._hook.close()
        self._lineage = (inputs, summary)
        self.log.info(
            "Done: %d transcribed, %d skipped, %d failed in %.1f s%s",
            summary.count("ok"), summary.count("skipped"), summary.count("failed"), summary.seconds,
            f"; manifest {summary.manifest_uri}" if summary.manifest_uri else "",
        )  # fmt: skip
        return summary.to_xcom()

    def on_kill(self) -> None:
        """Stop promptly: no new file starts, retries stop waiting, connections close."""
        if self._batch is not None:
            self._batch.stop.set()
        if self._hook is not None and "endpoint" in self._hook.__dict__:
            self._hook.endpoint.stopping.set()
            self._hook.close()

    # -- lineage -------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the audio locations; output: the transcript folder (OpenLineage stays optional)."""
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        inputs, summary = self._lineage
        datasets = {_dataset(item.uri) for item in inputs}
        outputs = (
            [Dataset(*_dataset(summary.output_uri))] if summary is not None and summary.output_uri else []
        )
        return OperatorLineage(inputs=[Dataset(ns, name) for ns, name in sorted(datasets)], outputs=outputs)


def _dataset(uri: str) -> tuple[str, str]:
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        bucket, _, key = rest.partition("/")
        return f"{scheme}://{bucket}", key.rsplit("/", 1)[0] if "/" in key else key
    import os

    return "file", os.path.dirname(os.path.abspath(uri))
