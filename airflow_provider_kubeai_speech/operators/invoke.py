"""InvokeSpeechOperator: transcribe one recording or a whole batch through a KubeAI speech model."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Literal, get_args

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.operators.templating import KeepTrailingNewlines, is_templated
from airflow_provider_kubeai_speech.spec import require_model_name
from airflow_provider_kubeai_speech.speech import (
    TranscriptionRequest,
    check_chunking,
    check_granularities,
    check_response_format,
    check_temperature,
)
from airflow_provider_kubeai_speech.transcription.shards import check_shard, in_shard
from airflow_provider_kubeai_speech.transcription.storage import conn_id_in_uri

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
    from airflow_provider_kubeai_speech.transcription.batch import BatchTranscriber


class InvokeSpeechOperator(KeepTrailingNewlines, BaseOperator):
    """Transcribe audio with a KubeAI speech model: one file, a list, a glob or a folder, local or remote.

    Up to ``max_concurrency`` streamed uploads run at once over one pooled connection; transient
    failures are retried per file; each transcript is written atomically next to a JSONL results
    manifest (``_transcriptions/`` parts) as soon as it arrives. With ``skip_existing`` a rerun after
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
    :param audio_conn_id: the storage connection for ``audio`` URIs that name none (as
        common-io's ``FileTransferOperator`` has ``source_conn_id``); default: the scheme's
        (``aws_default`` for s3://, ``google_cloud_default`` for gs://) when it exists, else the
        storage library's credential chain. ``s3://CONN@bucket/key`` names its own, and an
        ``ObjectStoragePath`` keeps its own.
    :param output_conn_id: the same for ``output_path`` (``dest_conn_id`` in FileTransferOperator).
    :param if_no_inputs: what a run that finds no recording does (an empty folder, a glob that
        matches nothing, an empty list from XCom): ``"fail"`` (default), ``"skip"`` (the task is
        skipped) or ``"succeed"`` (a summary of zero files). A missing file or folder still fails.
    :param shard_count: split the inputs over this many tasks (e.g. mapped with
        ``.expand_kwargs(speech_shards(8))``); each input goes to the shard the sha256 of its
        location picks, so a retry of a shard gets the same files. All shards may write one
        ``output_path``. Default 1: this task takes every input.
    :param shard_index: which shard this task transcribes, ``0 .. shard_count - 1``.
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
        "audio_conn_id",
        "output_conn_id",
        "shard_count",
        "shard_index",
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
        audio_conn_id: str | None = None,
        output_conn_id: str | None = None,
        if_no_inputs: IfNoInputs = "fail",
        shard_count: int = 1,
        shard_index: int = 0,
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
        self.audio_conn_id = audio_conn_id
        self.output_conn_id = output_conn_id
        self.if_no_inputs = if_no_inputs
        self.shard_count = shard_count
        self.shard_index = shard_index
        self._batch: BatchTranscriber | None = None
        self._hook: KubeAISpeechHook | None = None
        self._lineage: _Lineage | None = None
        self._check_arguments(rendered=False)

    def _check_arguments(self, *, rendered: bool = True) -> _Checked:
        """Every argument error, before anything is read or sent: at construction for the values
        given as they are, and again after rendering (templated values are checked then)."""

        def given(value: Any) -> bool:
            return rendered or not is_templated(value)

        if given(self.response_format):
            check_response_format(self.response_format)
        if given(self.timestamp_granularities):
            check_granularities(self.timestamp_granularities)
        if given(self.model_name):
            require_model_name(self.model_name, adapter=True)
        if self.if_no_inputs not in get_args(IfNoInputs):
            raise KubeAISpeechError(
                f"if_no_inputs={self.if_no_inputs!r} is not one of {', '.join(map(repr, get_args(IfNoInputs)))}. "
                "Fix: if_no_inputs='skip' to skip the task on a night without recordings, 'succeed' to "
                "return a summary of zero files, or 'fail' (the default)."
            )
        if given(self.audio) and not (self.audio == [] and self.if_no_inputs != "fail"):
            _check_audio(self.audio)
        if given(self.output_path) and self.output_path is not None:
            if not isinstance(self.output_path, str | os.PathLike) and not hasattr(
                self.output_path, "protocol"
            ):
                raise KubeAISpeechError(
                    f"output_path={self.output_path!r} is not a path or URI. Fix: a folder or bucket URI, "
                    "e.g. output_path='s3://transcripts/{{ ds }}', or None to return transcripts in XCom."
                )
            if not str(self.output_path).strip():
                raise KubeAISpeechError(
                    f"output_path={self.output_path!r} is empty: transcripts would be written into the worker's "
                    "working directory. Fix: a folder or bucket URI, e.g. output_path='s3://transcripts/{{ ds }}', "
                    "or None to return transcripts in XCom."
                )
        for outlet in getattr(self, "outlets", None) or []:
            uri = getattr(outlet, "uri", None)
            if isinstance(uri, str) and "://" in uri and conn_id_in_uri(uri):
                plain = uri.replace(f"{conn_id_in_uri(uri)}@", "", 1)
                raise KubeAISpeechError(
                    f"outlets has Asset({uri!r}), which names the connection {conn_id_in_uri(uri)!r}: the same "
                    f"data read through another connection would be another asset. Fix: Asset({plain!r})."
                )
        for name in ("audio_conn_id", "output_conn_id", "kubeai_conn_id"):
            value = getattr(self, name)
            if given(value) and value is not None and (not isinstance(value, str) or not value.strip()):
                raise KubeAISpeechError(
                    f"{name}={value!r} is not a connection id. Fix: e.g. {name}='aws_default', or leave it unset."
                )
        # The transcription settings are checked by the request's own rules (speech.py), the
        # batch's numbers by _NUMBERS: each rule is written once.
        if given(self.temperature):
            check_temperature(self.temperature)
        if given(self.chunk_seconds) and given(self.chunk_overlap_seconds):
            check_chunking(self.chunk_seconds, self.chunk_overlap_seconds)
        if given(self.shard_index) and given(self.shard_count):
            try:
                check_shard(self.shard_index, self.shard_count)
            except ValueError as err:
                raise KubeAISpeechError(
                    f"{err}. Fix: e.g. .expand_kwargs(speech_shards(8)), or leave both unset."
                ) from None
        checked = _Checked()
        for name, rule in _NUMBERS.items():
            value = getattr(self, name)
            if given(value):
                setattr(checked, name, rule.check(name, value))
        return checked

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
        from airflow_provider_kubeai_speech.transcription.batch import (
            BatchFailed,
            BatchOptions,
            BatchTranscriber,
        )
        from airflow_provider_kubeai_speech.transcription.long_audio import chunk_settings
        from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
        from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs

        checked = self._check_arguments()
        concurrency, attempts = int(checked.max_concurrency or 1), int(checked.max_attempts or 1)
        request = TranscriptionRequest(
            self.model_name,
            response_format=self.response_format,
            language=self.language,
            prompt=self.prompt,
            temperature=self.temperature,
            timestamp_granularities=self.timestamp_granularities,
            extra_fields=self.extra_fields,
            chunk_seconds=self.chunk_seconds,
            chunk_overlap_seconds=0.0 if self.chunk_overlap_seconds is None else self.chunk_overlap_seconds,
        )
        chunk_settings(request.chunk_seconds, request.chunk_overlap_seconds)  # the audio extra is there
        inputs = resolve_inputs(self.audio, self.audio_conn_id)
        # A quiet night is judged on the whole listing, before sharding: a shard that the hash
        # gives no file is not a quiet night, it succeeds with zero.
        quiet_night = all(item.nothing_found for item in inputs) and self.if_no_inputs != "fail"
        shard_index, shard_count = check_shard(self.shard_index, self.shard_count)
        if shard_count > 1 and not quiet_night:
            listed = len(inputs)
            inputs = list(in_shard(inputs, shard_index, shard_count))
            self.log.info("Shard %d of %d: %d of %d input(s)", shard_index, shard_count, len(inputs), listed)
        max_xcom_files = int(checked.max_xcom_files or 0)
        if self.output_path is None and len(inputs) > max_xcom_files:
            raise KubeAISpeechError(
                f"{len(inputs)} inputs and no output_path: transcripts would go to XCom, which is for small data "
                f"(max_xcom_files={self.max_xcom_files}). Fix: set output_path to a folder or bucket for the transcripts."
            )
        output = (
            OutputFolder(self.output_path, conn_id=self.output_conn_id)
            if self.output_path is not None
            else None
        )
        if quiet_night:
            return self._no_inputs(inputs, output)
        self._lineage = _Lineage(inputs, output)
        options = BatchOptions(
            max_concurrency=concurrency,
            skip_existing=self.skip_existing,
            max_failed=float(checked.max_failed or 0),
            progress_interval=float(checked.progress_interval or 15.0),
        )
        self._hook = self.hook_for(concurrency, attempts)
        self._batch = BatchTranscriber(
            self._hook.endpoint, request, options, output, self.log, run_id=context.get("run_id")
        )
        try:
            summary = self._batch.run(inputs)
        except BatchFailed as err:
            self._lineage.summary = err.summary
            raise
        finally:
            self._hook.close()
        self._lineage.summary = summary
        self.log.info(
            "Done: %d transcribed, %d skipped, %d failed in %.1f s%s",
            summary.count("ok"), summary.count("skipped"), summary.count("failed"), summary.seconds,
            f"; manifest {summary.manifest_uri}" if summary.manifest_uri else "",
        )  # fmt: skip
        return summary.to_xcom()

    def _no_inputs(self, inputs: list[Any], output: Any) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from airflow_provider_kubeai_speech.transcription.batch import BatchSummary

        found = "; ".join(item.problem for item in inputs) or "audio is an empty list"
        if self.if_no_inputs == "skip":
            raise AirflowSkipException(
                f"No recordings to transcribe ({found}); skipped (if_no_inputs='skip')."
            )
        self.log.info("No recordings to transcribe (%s); nothing sent (if_no_inputs='succeed').", found)
        return BatchSummary(output_uri=output.uri if output is not None else None).to_xcom()

    def on_kill(self) -> None:
        """Stop promptly: no new file starts, retries stop waiting, connections close."""
        if self._batch is not None:
            self._batch.stop.set()
        if self._hook is not None:
            self._hook.close()

    # -- lineage -------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the recordings transcribed (or found already transcribed); output: the
        transcript folder. Names come from ``ObjectStoragePath.namespace`` and ``.key``
        (``file`` and the absolute path for local files), never with a connection id."""
        return self._operator_lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What a failed run did: the recordings whose transcript was written (or already there),
        and the folder they are in."""
        return self._operator_lineage()

    def _operator_lineage(self) -> Any:
        try:
            from airflow.providers.common.compat.openlineage.facet import Dataset
            from airflow.providers.openlineage.extractors import OperatorLineage
        except ImportError:
            return None
        if self._lineage is None:
            return OperatorLineage()
        inputs, outputs = self._lineage.datasets(self.log)
        return OperatorLineage(
            inputs=[Dataset(namespace=ns, name=name) for ns, name in inputs],
            outputs=[Dataset(namespace=ns, name=name) for ns, name in outputs],
        )


def max_lineage_datasets() -> int:
    """How many input datasets are reported: Airflow's own cap on collected lineage assets,
    ``[lineage] max_assets_per_collector`` (default 100)."""
    from airflow.providers.common.compat.sdk import conf

    return conf.getint("lineage", "max_assets_per_collector", fallback=100)


class _Lineage:
    """What a run read and wrote, for OpenLineage."""

    def __init__(self, inputs: list[Any], output: Any) -> None:
        self.inputs = inputs
        self.output = output
        self.summary: Any = None

    def datasets(self, log: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        if self.summary is None:
            return [], []
        done = {r.input for r in self.summary.results if r.status in ("ok", "skipped")}
        found = [item.dataset for item in self.inputs if item.uri in done]
        cap = max_lineage_datasets()
        if len(found) > cap:
            log.warning(
                "OpenLineage: %d inputs, reporting the first %d ([lineage] max_assets_per_collector); "
                "the manifest lists them all",
                len(found),
                cap,
            )
            found = found[:cap]
        outputs = [output_dataset(self.output)] if self.output is not None and done else []
        return found, outputs


def output_dataset(output: Any) -> tuple[str, str]:
    """The output folder's OpenLineage dataset: ``(namespace, name)``."""
    if output.local is not None:
        return "file", output.local
    remote = output.remote
    return str(remote.namespace), str(remote.key).rstrip("/") or "/"


# -- argument checks ---------------------------------------------------------------------------

#: What a run that finds no recording does.
IfNoInputs = Literal["fail", "skip", "succeed"]


#: A KubeAI Model name (a DNS-1123 label), optionally ``_<adapter>``.
def _check_audio(audio: Any) -> None:
    if audio in (None, "", []) or (isinstance(audio, str) and not audio.strip()):
        raise KubeAISpeechError(
            f"audio={audio!r} is empty. Fix: a path, URI, glob, folder, or a list of them."
        )
    if isinstance(audio, list | tuple):
        for index, item in enumerate(audio):
            if item is None or (isinstance(item, str) and not item.strip()):
                raise KubeAISpeechError(
                    f"audio[{index}]={item!r} is empty. Fix: remove it, or give a path, URI, glob or folder."
                )


class _Number:
    """How one numeric argument is checked.

    :param low: the smallest value allowed.
    :param high: the largest value allowed (None: no limit).
    :param whole: only whole numbers.
    :param optional: None is allowed.
    :param fix: what to write instead.
    """

    def __init__(
        self,
        low: float,
        high: float | None = None,
        *,
        whole: bool = False,
        optional: bool = False,
        fix: str,
        low_open: bool = False,
    ) -> None:
        self.low, self.high, self.whole, self.optional, self.fix, self.low_open = (
            low, high, whole, optional, fix, low_open,
        )  # fmt: skip

    def check(self, name: str, value: Any) -> float | int | None:
        if value is None and self.optional:
            return None
        number: float
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self._refuse(name, value, "is not a number")
        try:
            number = float(value)
        except (TypeError, ValueError) as err:
            raise self._refuse(name, value, "is not a number") from err
        if not math.isfinite(number):
            raise self._refuse(name, value, "is not a finite number")
        if self.whole and not number.is_integer():
            raise self._refuse(name, value, "is not a whole number")
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or (self.high is not None and number > self.high):
            bounds = f"{'above' if self.low_open else 'at least'} {self.low:g}" + (
                f" and at most {self.high:g}" if self.high is not None else ""
            )
            raise self._refuse(name, value, f"must be {bounds}")
        return int(number) if self.whole else number

    def _refuse(self, name: str, value: Any, problem: str) -> KubeAISpeechError:
        return KubeAISpeechError(f"{name}={value!r} {problem}. Fix: {self.fix}.")


class _MaxFailed(_Number):
    def check(self, name: str, value: Any) -> float | int | None:
        number = super().check(name, value)
        assert number is not None
        if number >= 1 and not float(number).is_integer():
            raise self._refuse(name, value, "is neither a whole count nor a fraction below 1")
        return number


_NUMBERS: dict[str, _Number] = {
    "max_concurrency": _Number(
        1,
        1000,
        whole=True,
        fix="uploads in flight at once, e.g. max_concurrency=4 (ready replicas x their concurrency)",
    ),
    "max_attempts": _Number(1, 100, whole=True, fix="attempts per file, e.g. max_attempts=5"),
    "max_failed": _MaxFailed(
        0,
        fix="a count of files (e.g. max_failed=5) or a fraction of the batch below 1 (e.g. max_failed=0.05)",
    ),
    "max_xcom_files": _Number(0, whole=True, fix="e.g. max_xcom_files=100, or set output_path"),
    "progress_interval": _Number(
        0, low_open=True, fix="seconds between progress lines, e.g. progress_interval=15"
    ),
}


class _Checked:
    """The numeric arguments, checked."""

    max_concurrency: int | float | None = None
    max_attempts: int | float | None = None
    max_failed: int | float | None = None
    max_xcom_files: int | float | None = None
    progress_interval: int | float | None = None
