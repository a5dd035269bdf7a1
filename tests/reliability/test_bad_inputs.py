"""Bad inputs, one table: each gets a clear message naming what and why, and loses nothing done.

Groups: audio inputs (reported per file, the rest transcribed), operator arguments (refused before
any request), connections, endpoint answers, and the cluster side.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAISpeechError
from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from local_kubeai import Sandbox
from local_kubeai.testing import wait_until
from tests.audio_files import make_wav
from tests.integration.conftest import model_manifest

NS = "kubeai"
FAST = RetrySettings(max_attempts=2, backoff_factor=0.01, backoff_max=0.02, backoff_jitter=0.0)


@pytest.fixture
def served(make_kubeai_sandbox: Callable[..., Sandbox]) -> Sandbox:
    sandbox = make_kubeai_sandbox(startup_delay=0.1)
    sandbox.store.create(NS, model_manifest("whisper", replicas=1, scaling={"min_replicas": 1}), "t")
    wait_until(
        lambda: sandbox.store.get(NS, "whisper").get("status", {}).get("replicas", {}).get("ready") == 1
    )
    return sandbox


# -- audio inputs: reported per file, and the good file beside them is transcribed --------------


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


WAV_MAGIC = b"RIFF\x24\x00\x00\x00WAVEfmt "
AUDIO_CASES: list[tuple[str, Callable[[Path], str], str]] = [
    ("missing file", lambda t: str(t / "nope.wav"), "no such file"),
    ("empty file", lambda t: _write(t / "empty.wav", b""), "is empty (0 bytes)"),
    ("text file", lambda t: _write(t / "notes.wav", b"meeting notes"), "is not audio KubeAI can decode"),
    ("pdf renamed", lambda t: _write(t / "doc.mp3", b"%PDF-1.7\n..."), "is not audio KubeAI can decode"),
    ("png renamed", lambda t: _write(t / "img.flac", b"\x89PNG\r\n\x1a\n"), "is not audio KubeAI can decode"),
    ("zip renamed", lambda t: _write(t / "a.ogg", b"PK\x03\x04"), "is not audio KubeAI can decode"),
    ("corrupt wav body", lambda t: _write(t / "corrupt.wav", WAV_MAGIC + b"\x00" * 8), "HTTP 400"),
    (
        "wav without frames",
        lambda t: _write(t / "noframes.wav", make_wav(t / "x.wav", 0.0).read_bytes()),
        "HTTP 400",
    ),
    (
        "empty folder",
        lambda t: (t / "emptydir").mkdir(parents=True) or str(t / "emptydir"),
        "holds no audio files",
    ),
    (
        "folder of text",
        lambda t: _write(t / "txtdir" / "a.txt", b"x") and str(t / "txtdir"),
        "holds no audio files",
    ),
    ("glob without match", lambda t: str(t / "*.nothing"), "matches no file"),
    ("recursive glob without match", lambda t: str(t / "**" / "*.opus"), "matches no file"),
    ("unknown scheme", lambda t: "ftpx://host/a.wav", "unsupported URI scheme 'ftpx://'"),
    (
        "scheme without fsspec backend",
        lambda t: "webhdfs://nn:9870/a.wav",
        "unsupported URI scheme 'webhdfs://'",
    ),
    ("file uri missing", lambda t: f"file://{t}/gone.wav", "no such file"),
]


@pytest.mark.parametrize(("case", "make", "message"), AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_bad_audio_is_reported_per_file(
    served: Sandbox, tmp_path: Path, case: str, make: Callable[[Path], str], message: str
) -> None:
    good = make_wav(tmp_path / "good" / "good.wav", 0.3, seed=1)
    bad = make(tmp_path / "bad")
    batch = BatchTranscriber(
        KubeAISpeechHook(retry=FAST).transcribe,
        "whisper",
        BatchOptions(max_failed=1),
        OutputFolder(tmp_path / "out"),
        logging.getLogger("t"),
    )
    summary = batch.run(resolve_inputs([str(good), bad]))
    (failure,) = summary.failures
    assert message in (failure.error or ""), failure.error
    assert summary.count("ok") == 1 and (tmp_path / "out" / "good.json").exists()  # nothing else lost


# -- operator arguments: refused before any request -----------------------------------------------

ARGUMENT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bad response_format", {"response_format": "docx"}, "response_format='docx' is not one of"),
    ("bad granularity", {"timestamp_granularities": ["char"]}, "timestamp_granularities has 'char'"),
    ("zero concurrency", {"max_concurrency": 0}, "max_concurrency=0 must be at least 1"),
    ("zero attempts", {"max_attempts": 0}, "max_attempts=0 must be at least 1"),
    ("negative max_failed", {"max_failed": -1}, "max_failed=-1 must be at least 0"),
    ("non-numeric concurrency", {"max_concurrency": "many"}, "max_concurrency='many' is not a number. Fix:"),
    ("empty audio", {"audio": []}, "audio=[] is empty"),
    ("empty model name", {"model_name": ""}, "model_name: '' is not a valid Model name"),
    ("too many for XCom", {"audio": "MANY", "output_path": None}, "no output_path"),
    ("chunk too short", {"chunk_seconds": 3}, "chunk_seconds=3 is too short: pieces under 10 s"),
    (
        "chunk not a number",
        {"chunk_seconds": "5min"},
        "chunk_seconds='5min' is not a number of seconds. Fix: chunk_seconds=300",
    ),
    (
        "overlap too long",
        {"chunk_seconds": 60, "chunk_overlap_seconds": 30},
        "chunk_overlap_seconds=30 must be between 0 and a quarter",
    ),
    # Issue 14, item 19: refused with the field, the value and the fix, not a raw ValueError.
    ("NaN max_failed", {"max_failed": float("nan")}, "max_failed=nan is not a finite number. Fix: a count"),
    ("infinite max_failed", {"max_failed": float("inf")}, "max_failed=inf is not a finite number. Fix:"),
    ("text NaN max_failed", {"max_failed": "nan"}, "max_failed='nan' is not a finite number"),
    (
        "fractional count",
        {"max_failed": 2.5},
        "max_failed=2.5 is neither a whole count nor a fraction below 1",
    ),
    (
        "empty output_path",
        {"output_path": ""},
        "output_path='' is empty: transcripts would be written into the worker's working directory. Fix:",
    ),
    ("blank output_path", {"output_path": "  "}, "output_path='  ' is empty"),
    ("infinite concurrency", {"max_concurrency": float("inf")}, "max_concurrency=inf is not a finite number"),
    ("fractional concurrency", {"max_concurrency": 2.5}, "max_concurrency=2.5 is not a whole number"),
    (
        "huge concurrency",
        {"max_concurrency": 10**9},
        "max_concurrency=1000000000 must be at least 1 and at most 1000",
    ),
    ("boolean attempts", {"max_attempts": True}, "max_attempts=True is not a number"),
    ("NaN temperature", {"temperature": float("nan")}, "temperature=nan is not a finite number"),
    ("temperature above 1", {"temperature": 3}, "temperature=3 must be at least 0 and at most 1"),
    ("NaN chunk", {"chunk_seconds": float("nan")}, "chunk_seconds=nan is not a finite number"),
    (
        "infinite overlap",
        {"chunk_seconds": 60, "chunk_overlap_seconds": float("inf")},
        "chunk_overlap_seconds=inf is not a finite number",
    ),
    ("zero progress interval", {"progress_interval": 0}, "progress_interval=0 must be above 0"),
    (
        "NaN progress interval",
        {"progress_interval": float("nan")},
        "progress_interval=nan is not a finite number",
    ),
    ("negative max_xcom_files", {"max_xcom_files": -1}, "max_xcom_files=-1 must be at least 0"),
    ("empty list item", {"audio": ["/a.wav", ""]}, "audio[1]='' is empty"),
    (
        "model name with newline",
        {"model_name": "whisper\n"},
        "model_name: 'whisper\\n' is not a valid Model name",
    ),
    ("empty storage connection", {"audio_conn_id": ""}, "audio_conn_id='' is not a connection id"),
]


@pytest.mark.parametrize(("case", "changes", "message"), ARGUMENT_CASES, ids=[c[0] for c in ARGUMENT_CASES])
def test_bad_operator_arguments_are_refused_before_any_request(
    served: Sandbox, tmp_path: Path, case: str, changes: dict[str, Any], message: str
) -> None:
    from types import SimpleNamespace

    from airflow_provider_kubeai_speech.operators.invoke import InvokeSpeechOperator

    audio = [
        str(make_wav(tmp_path / f"f{i}.wav", 0.1, seed=i))
        for i in range(3 if changes.get("audio") != "MANY" else 101)
    ]
    args: dict[str, Any] = {
        "model_name": "whisper",
        "audio": audio,
        "output_path": str(tmp_path / "out"),
        **changes,
    }
    if args["audio"] == "MANY":
        args["audio"] = audio

    def construct_and_run() -> None:
        # Refused at construction when the value is given as it is, else once it is rendered.
        op = InvokeSpeechOperator(task_id="t", **args)
        op.execute({"run_id": "r", "ti": SimpleNamespace(dag_id="d", task_id="t", try_number=1)})  # type: ignore[arg-type]

    with pytest.raises(KubeAISpeechError) as refused:
        construct_and_run()
    assert message in str(refused.value)
    assert served.stats.snapshot()["transcriptions"] == 0


# -- connections --------------------------------------------------------------------------------


def _conn(**changes: Any) -> str:
    conn = json.loads(os.environ["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])
    extra = changes.pop("extra", {})
    conn.update(changes)
    conn["extra"].update(extra)
    return json.dumps(conn)


CONNECTION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no host", {"host": ""}, "has no host"),
    ("ftp host", {"host": "ftp://files"}, "not an http(s) URL"),
    ("zero read timeout", {"extra": {"read_timeout": 0}}, "read_timeout=0 is not a positive number"),
    ("text connect timeout", {"extra": {"connect_timeout": "soon"}}, "connect_timeout='soon'"),
    ("verify maybe", {"extra": {"verify_ssl": "maybe"}}, "verify_ssl='maybe' is not a boolean"),
    ("nothing listening", {"host": "http://127.0.0.1:9"}, "no answer from http://127.0.0.1:9/openai/v1"),
    ("wrong gateway token", {"password": "wrong-token"}, "HTTP 401"),
    ("verify_ssl a list", {"extra": {"verify_ssl": []}}, "verify_ssl=[] is not a boolean"),
    (
        "token over plain http to a remote host",
        {"host": "http://gateway.example.com", "password": "right-token"},
        "in cleartext to 'http://gateway.example.com/openai/v1'",
    ),
    ("zero max_response_bytes", {"extra": {"max_response_bytes": 0}}, "max_response_bytes=0"),
    (
        "missing CA bundle file",
        {"host": "https://127.0.0.1:9", "extra": {"ca_bundle": "/nonexistent/ca.pem"}},
        "ca_bundle='/nonexistent/ca.pem' does not exist",
    ),
]


@pytest.mark.parametrize(
    ("case", "changes", "message"), CONNECTION_CASES, ids=[c[0] for c in CONNECTION_CASES]
)
def test_bad_connections_say_what_to_fix(
    make_kubeai_sandbox: Callable[..., Sandbox],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    changes: dict[str, Any],
    message: str,
) -> None:
    make_kubeai_sandbox(gateway_token="right-token")
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", _conn(password="right-token"))
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", _conn(**changes))
    with pytest.raises(KubeAISpeechError) as err:
        KubeAISpeechHook(retry=FAST).list_models()
    assert message in str(err.value)
    assert "right-token" not in str(err.value) and "wrong-token" not in str(err.value)


def test_a_missing_connection_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="nonexistent_conn"):
        KubeAISpeechHook("nonexistent_conn").list_models()


# -- answers from the endpoint ------------------------------------------------------------------


def _answer_with(
    status: int, body: bytes, content_type: str, length: int | None = None
) -> Callable[..., None]:
    def answer(self: Any, *args: Any) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length if length is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)
        if length is not None:
            self.close_connection = True

    return answer


ANSWER_CASES: list[tuple[str, Callable[..., None], str, str]] = [
    (
        "html instead of json",
        _answer_with(200, b"<html>login</html>", "text/html"),
        "json",
        "expected JSON (json) but got text/html",
    ),
    (
        "json without text",
        _answer_with(200, b'{"result": "x"}', "application/json"),
        "json",
        "has no 'text' string",
    ),
    ("broken json", _answer_with(200, b'{"text": "x"', "application/json"), "json", "expected JSON (json)"),
    (
        "verbose without segments list",
        _answer_with(200, b'{"text": "x", "segments": 3}', "application/json"),
        "verbose_json",
        "verbose_json without a segments list",
    ),
    (
        "json when srt asked",
        _answer_with(200, b'{"error": "x"}', "application/json"),
        "srt",
        "asked for srt but got JSON",
    ),
    (
        "vtt without header",
        _answer_with(200, b"00:00.000 --> 00:01.000\nhi", "text/vtt"),
        "vtt",
        "must start with 'WEBVTT'",
    ),
    (
        "204 instead of a transcript",
        _answer_with(204, b"", "text/plain"),
        "text",
        "HTTP 204 is not a transcript",
    ),
    (
        "login page for text",
        _answer_with(200, b"<!DOCTYPE html><html>Sign in</html>", "text/html"),
        "text",
        "an HTML page",
    ),
    ("redirect", _answer_with(302, b"", "text/plain"), "srt", "a redirect without a Location"),
    (
        "truncated body",
        _answer_with(200, b'{"text": "hal', "application/json", length=400),
        "json",
        "no answer",
    ),
]


@pytest.mark.parametrize(("case", "answer", "fmt", "message"), ANSWER_CASES, ids=[c[0] for c in ANSWER_CASES])
def test_malformed_answers_are_named(
    served: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    case: str,
    answer: Any,
    fmt: str,
    message: str,
) -> None:
    from local_kubeai import openai_api

    monkeypatch.setattr(openai_api.KubeAIHandler, "_answer", answer)
    clip = make_wav(tmp_path / "a.wav", 0.2, seed=3)
    with pytest.raises(KubeAISpeechError) as err:
        KubeAISpeechHook(retry=FAST).transcribe("whisper", clip, response_format=fmt)
    assert message in str(err.value)


def test_unknown_model_is_named(served: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(KubeAISpeechError, match=r"KubeAI has no model 'whisper-typo'.*Fix: check model_name"):
        KubeAISpeechHook(retry=FAST).transcribe("whisper-typo", make_wav(tmp_path / "a.wav", 0.2, seed=3))


# -- the cluster side -----------------------------------------------------------------------------


def test_forbidden_namespace_wrong_kube_token_and_unreachable_api(
    served: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(KubeAISpeechError, match=r"403 Forbidden.*Fix: grant the Airflow service account"):
        KubeAISpeechHook(namespace="team-b").find_model("whisper")
    config = json.loads(served.kubeconfig_path.read_text())
    config["users"][0]["user"]["token"] = "stale"
    bad_kubeconfig = served.state_dir / "bad-kubeconfig"
    bad_kubeconfig.write_text(json.dumps(config))
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_DEFAULT",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(bad_kubeconfig)}}),
    )
    with pytest.raises(
        KubeAISpeechError, match=r"401 Unauthorized.*Fix: the Kubernetes connection's credentials"
    ):
        KubeAISpeechHook().find_model("whisper")


def test_invalid_manifest_is_refused_by_the_server_with_its_message(served: Sandbox) -> None:
    manifest = model_manifest("raw")
    manifest["spec"]["url"] = "ftp://elsewhere"
    with pytest.raises(
        KubeAISpeechError,
        match=r'422 Invalid.*spec.url: Invalid value: "ftp://elsewhere": url must start with',
    ):
        KubeAISpeechHook().apply_model(manifest)


def test_the_table_is_large_enough() -> None:
    assert len(AUDIO_CASES) + len(ARGUMENT_CASES) + len(CONNECTION_CASES) + len(ANSWER_CASES) + 5 >= 40
