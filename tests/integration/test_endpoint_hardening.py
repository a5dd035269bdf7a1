"""What the endpoint client sends where, and what it accepts back, against a misbehaving server.

The misbehaviour is the sandbox's ``canned_answer`` fault (real HTTP on loopback); "another host"
is a tiny recording server on another loopback port (another origin).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_kubeai_speech.exceptions import KubeAIEndpointError, KubeAISpeechError
from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings
from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook
from airflow_provider_kubeai_speech.speech import TranscriptionRequest
from airflow_provider_kubeai_speech.transcription.batch import BatchOptions, BatchTranscriber
from airflow_provider_kubeai_speech.transcription.manifest import MANIFEST_FOLDER
from airflow_provider_kubeai_speech.transcription.outputs import OutputFolder
from airflow_provider_kubeai_speech.transcription.sources import resolve_inputs
from local_kubeai import Sandbox
from local_kubeai.engines import fake_transcript_text
from local_kubeai.testing import wait_until
from tests.integration.conftest import model_manifest

CLIP = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "audio" / "call-001.wav"
FAST = RetrySettings(max_attempts=2, backoff_factor=0.01, backoff_max=0.02, backoff_jitter=0.0)
TOKEN = "tok-9d1e-gateway-secret"
NS = "kubeai"


def ready(sandbox: Sandbox) -> Sandbox:
    sandbox.store.create(NS, model_manifest("whisper", replicas=1, scaling={"min_replicas": 1}), "t")
    wait_until(
        lambda: (sandbox.store.get(NS, "whisper").get("status") or {}).get("replicas", {}).get("ready") == 1
    )
    return sandbox


@pytest.fixture
def served(make_kubeai_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return ready(make_kubeai_sandbox(startup_delay=0.1))


@pytest.fixture
def gated(make_kubeai_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return ready(make_kubeai_sandbox(startup_delay=0.1, gateway_token=TOKEN))


def set_connection(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])
    conn["extra"].update(changes.pop("extra", {}))
    conn.update(changes)
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", json.dumps(conn))


def hook(**kwargs: Any) -> KubeAISpeechHook:
    return KubeAISpeechHook(retry=FAST, **kwargs)


class Elsewhere:
    """Another origin on loopback that records what reaches it and answers like a transcript."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while (size := int(self.rfile.readline().split(b";")[0] or b"0", 16)) > 0:
                        self.rfile.read(size + 2)
                    self.rfile.readline()
                elif length:
                    self.rfile.read(length)
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers)}
                )
                body = b'{"text": "from elsewhere"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    yield server
    server.close()


# -- 2. redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(served: Sandbox, elsewhere: Elsewhere, status: int) -> None:
    location = f"{elsewhere.url}/openai/v1/audio/transcriptions"
    served.faults.update({"canned_answer": {"status": status, "headers": {"Location": location}}})
    with pytest.raises(KubeAIEndpointError) as err:
        hook().transcribe("whisper", CLIP)
    assert f"HTTP {status}, a redirect to '{location}'" in str(err.value) and "never followed" in str(
        err.value
    )
    assert elsewhere.requests == []


def test_a_redirect_without_location_is_a_failure(served: Sandbox) -> None:
    served.faults.update({"canned_answer": {"status": 302, "content_type": "text/plain", "body": "moved"}})
    with pytest.raises(KubeAIEndpointError, match="HTTP 302, a redirect without a Location"):
        hook().transcribe("whisper", CLIP, response_format="srt")


# -- 3. the token goes only to the connection's host ------------------------------------------------


def test_invoke_sends_the_token_only_to_the_connections_host(gated: Sandbox, elsewhere: Elsewhere) -> None:
    h = hook()
    assert h.invoke("whisper", "GET", "models", params={"feature": "SpeechToText"}).status_code == 200
    response = h.invoke("whisper", "GET", f"{elsewhere.url}/openai/v1/models")
    assert response.json() == {"text": "from elsewhere"}
    with CLIP.open("rb") as handle:
        h.invoke("whisper", url=f"{elsewhere.url}/x", files={"file": ("a.wav", handle, "audio/wav")})
    assert len(elsewhere.requests) == 2
    for request in elsewhere.requests:
        assert "Authorization" not in request["headers"] and TOKEN not in json.dumps(request)


# -- 4. credentials never reach errors, the manifest or XCom -----------------------------------------


def test_a_gateway_echoing_the_request_cannot_leak_the_token(
    gated: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gated.faults.update(
        {"canned_answer": {"status": 400, "body": "bad request; you sent:", "echo_headers": True}}
    )
    with pytest.raises(KubeAIEndpointError) as err:
        hook().transcribe("whisper", CLIP)
    assert "HTTP 400" in str(err.value) and "Bearer ***" in str(err.value) and TOKEN not in str(err.value)
    out = tmp_path / "out"
    batch = BatchTranscriber(
        hook().transcribe, "whisper", BatchOptions(max_failed=1), OutputFolder(out), logging.getLogger("t")
    )
    summary = batch.run(resolve_inputs([str(CLIP)]))
    assert summary.count("failed") == 1 and "Bearer ***" in (summary.failures[0].error or "")
    manifest = "".join(part.read_text() for part in (out / MANIFEST_FOLDER).iterdir())
    assert "Bearer ***" in manifest and TOKEN not in manifest
    assert TOKEN not in json.dumps(summary.to_xcom())
    assert TOKEN not in caplog.text


def test_url_credentials_are_basic_auth_to_that_host_only_and_never_shown(
    served: Sandbox, elsewhere: Elsewhere, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = "svc-airflow", "pw-5ecret-in-url"
    set_connection(monkeypatch, host=f"http://{user}:{password}@127.0.0.1:{elsewhere.url.rsplit(':', 1)[1]}")
    h = hook()
    assert h.base_url == f"{elsewhere.url}/openai/v1" and password not in repr(h.config)
    with pytest.raises(KubeAIEndpointError) as err:  # elsewhere answers a transcript, not a model list
        h.list_models()
    assert password not in str(err.value) and user not in str(err.value)
    (request,) = elsewhere.requests
    assert (
        request["headers"]["Authorization"]
        == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    )

    from airflow.sdk._shared.secrets_masker import redact  # what Airflow's log and XCom masking use

    assert password not in str(redact(f"leaked {password} and {user}:{password}"))

    set_connection(monkeypatch, host=f"http://{user}:{password}@{served.kubeai_url.removeprefix('http://')}")
    served.faults.update({"canned_answer": {"status": 400, "body": "echo:", "echo_headers": True}})
    with pytest.raises(KubeAIEndpointError) as err:
        hook().transcribe("whisper", CLIP)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert "Basic ***" in str(err.value) and basic not in str(err.value) and password not in str(err.value)


def test_url_credentials_beyond_latin_1_are_sent_as_utf_8(
    served: Sandbox, elsewhere: Elsewhere, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(
        monkeypatch, host=f"http://svc:pr%C3%BCf%E2%82%AC@127.0.0.1:{elsewhere.url.rsplit(':', 1)[1]}"
    )
    with pytest.raises(KubeAIEndpointError, match="did not answer with a model list") as err:
        hook().list_models()
    assert "prüf€" not in str(err.value)
    (request,) = elsewhere.requests
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode("svc:prüf€".encode()).decode()


def test_test_connection_hides_url_credentials(monkeypatch: pytest.MonkeyPatch, served: Sandbox) -> None:
    set_connection(monkeypatch, host="http://user:pw-not-shown@127.0.0.1:9")
    ok, message = KubeAISpeechHook(retry=RetrySettings(max_attempts=1)).test_connection()
    assert not ok and "pw-not-shown" not in message and "http://127.0.0.1:9/openai/v1" in message


# -- 5. control characters in names and bodies are escaped -----------------------------------------


def test_names_and_bodies_cannot_forge_log_lines(served: Sandbox) -> None:
    served.faults.update(
        {"canned_answer": {"status": 400, "body": "oops\r\x1b[2K2026-12-01 INFO all good\u2028done"}}
    )
    with pytest.raises(KubeAIEndpointError) as err:
        hook().transcribe("whisper", CLIP.read_bytes(), filename="call\nERROR forged.wav")
    message = str(err.value)
    assert message.splitlines() == [message]
    assert "\x1b" not in message and "\r" not in message
    assert "\\x1b[2K" in message and "call\\nERROR forged.wav" in message


# -- 7. only a 200 with a body of the asked format is a transcript ---------------------------------

LOGIN = "<!DOCTYPE html><html><body><form>Sign in</form></body></html>"
NOT_TRANSCRIPTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("login page for text", {"content_type": "text/html", "body": LOGIN}, "text", "an HTML page"),
    ("login page for srt", {"content_type": "text/html", "body": LOGIN}, "srt", "an HTML page"),
    ("login page as text/plain", {"content_type": "text/plain", "body": LOGIN}, "text", "an HTML page"),
    (
        "json error as text/plain",
        {"content_type": "text/plain", "body": '{"error": "quota exceeded"}'},
        "text",
        "asked for text but got JSON",
    ),
    (
        "json error for json",
        {"content_type": "application/json", "body": '{"error": "x"}'},
        "json",
        "no 'text' string",
    ),
    ("204", {"status": 204}, "text", "HTTP 204 is not a transcript"),
    ("204 for srt", {"status": 204}, "srt", "HTTP 204 is not a transcript"),
    (
        "202",
        {"status": 202, "content_type": "text/plain", "body": "queued"},
        "text",
        "HTTP 202 is not a transcript",
    ),
    ("302 without location", {"status": 302}, "srt", "a redirect without a Location"),
    (
        "srt that is prose",
        {"content_type": "text/plain", "body": "hello there"},
        "srt",
        "srt block 1 has no cue timing",
    ),
    (
        "vtt without cues",
        {"content_type": "text/vtt", "body": "WEBVTT\n\nsome text"},
        "vtt",
        "vtt block 1 has no cue timing",
    ),
    (
        "verbose NaN times",
        {
            "content_type": "application/json",
            "body": '{"text": "x", "segments": [{"start": NaN, "end": 1, "text": "x"}]}',
        },
        "verbose_json",
        "segments[0] has start=nan",
    ),
    (
        "verbose segment not an object",
        {"content_type": "application/json", "body": '{"text": "x", "segments": ["x"]}'},
        "verbose_json",
        "segments[0] is a str, not an object",
    ),
    (
        "verbose end before start",
        {
            "content_type": "application/json",
            "body": '{"text": "x", "segments": [{"start": 3, "end": 1, "text": "x"}]}',
        },
        "verbose_json",
        "ends before it starts",
    ),
    (
        "verbose words not a list",
        {"content_type": "application/json", "body": '{"text": "x", "segments": [], "words": "x"}'},
        "verbose_json",
        "'words' is a str",
    ),
    (
        "verbose start missing",
        {"content_type": "application/json", "body": '{"text": "x", "segments": [{"end": 1, "text": "x"}]}'},
        "verbose_json",
        "start=None",
    ),
]


@pytest.mark.parametrize(
    ("case", "answer", "fmt", "message"), NOT_TRANSCRIPTS, ids=[c[0] for c in NOT_TRANSCRIPTS]
)
def test_non_transcripts_are_failures(
    served: Sandbox, case: str, answer: dict[str, Any], fmt: str, message: str
) -> None:
    served.faults.update({"canned_answer": answer})
    with pytest.raises(KubeAIEndpointError) as err:
        hook().transcribe("whisper", CLIP, response_format=fmt)
    assert message in str(err.value)
    assert served.stats.snapshot()["outcomes"] == {"canned": 1}  # not retried


def test_a_non_transcript_is_not_written_and_a_rerun_sends_it_again(served: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "out"

    def run() -> Any:
        batch = BatchTranscriber(
            hook().transcribe, TranscriptionRequest("whisper", response_format="srt"),
            BatchOptions(max_failed=1), OutputFolder(out), logging.getLogger("t"),
        )  # fmt: skip
        return batch.run(resolve_inputs([str(CLIP)]))

    served.faults.update({"canned_answer": {"content_type": "text/html", "body": LOGIN}})
    assert run().count("failed") == 1 and not (out / "call-001.srt").exists()
    served.faults.update({"canned_answer": {}})
    assert run().count("ok") == 1 and (out / "call-001.srt").read_text().startswith("1\n")


def test_real_transcripts_of_every_format_still_count(served: Sandbox) -> None:
    h = hook()
    expected = fake_transcript_text(CLIP.read_bytes())
    for fmt in ("json", "verbose_json", "text", "srt", "vtt"):
        result = h.transcribe(
            "whisper",
            CLIP,
            response_format=fmt,
            timestamp_granularities=["word", "segment"] if fmt == "verbose_json" else None,
        )
        assert expected.split()[0] in result.content, fmt


# -- 8. answers are bounded in size and in time -----------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_past_the_size_limit_is_a_failure(served: Sandbox, chunked: bool) -> None:
    from airflow_provider_kubeai_speech.exceptions import ResponseTooLargeError

    served.faults.update(
        {
            "canned_answer": {
                "content_type": "text/plain",
                "body": "x" * (1 << 20),
                "repeat": 96,
                "chunked": chunked,
            }
        }
    )
    started = time.monotonic()
    with pytest.raises(
        ResponseTooLargeError, match=r"longer than max_response_bytes=67108864|announces 100663296 bytes"
    ):
        hook().transcribe("whisper", CLIP, response_format="text")
    assert time.monotonic() - started < 20


def test_the_size_limit_is_configurable(served: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kubeai_speech.exceptions import ResponseTooLargeError

    with pytest.raises(ResponseTooLargeError, match="max_response_bytes=10"):
        hook(max_response_bytes=10).transcribe("whisper", CLIP)
    set_connection(monkeypatch, extra={"max_response_bytes": 12})
    with pytest.raises(ResponseTooLargeError, match="max_response_bytes=12"):
        hook().transcribe("whisper", CLIP)
    assert hook(max_response_bytes=100_000).transcribe("whisper", CLIP).text


def test_a_huge_answer_does_not_grow_memory(served: Sandbox) -> None:
    """768 MiB (chunked, so nothing announces it) against a client in a child process."""
    served.faults.update(
        {
            "canned_answer": {
                "content_type": "text/plain",
                "body": "y" * (1 << 20),
                "repeat": 768,
                "chunked": True,
            }
        }
    )
    script = (
        "import resource, sys\n"
        "from airflow_provider_kubeai_speech.hooks.kubeai import KubeAISpeechHook\n"
        "from airflow_provider_kubeai_speech.hooks.endpoint import RetrySettings\n"
        "h = KubeAISpeechHook(retry=RetrySettings(max_attempts=1))\n"
        "h.endpoint.session\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    h.transcribe('whisper', sys.argv[1], response_format='text')\n"
        "    outcome = 'accepted'\n"
        "except Exception as err:\n"
        "    outcome = type(err).__name__\n"
        "print(outcome, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(CLIP)], capture_output=True, text=True, env=os.environ.copy(),
        timeout=120, check=True,
    )  # fmt: skip
    outcome, growth = run.stdout.split()[-2:]
    assert outcome == "ResponseTooLargeError" and int(growth) < 160, run.stdout


def test_a_trickling_answer_meets_the_deadline(served: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_kubeai_speech.exceptions import RequestDeadlineError

    body = json.dumps({"text": "slow"}).ljust(100)
    served.faults.update(
        {"canned_answer": {"content_type": "application/json", "body": body, "bytes_per_second": 5}}
    )
    set_connection(monkeypatch, extra={"read_timeout": 1, "connect_timeout": 1})
    started = time.monotonic()
    with pytest.raises(
        RequestDeadlineError, match=r"longer than the default total_timeout .*\(\d s\).*while reading"
    ):
        hook().transcribe("whisper", CLIP)
    assert 2.5 < time.monotonic() - started < 10  # 20 s of trickle otherwise
    started = time.monotonic()
    with pytest.raises(RequestDeadlineError, match=r"total_timeout=1\.5"):
        hook(total_timeout=1.5).transcribe("whisper", CLIP)
    assert time.monotonic() - started < 8  # 20 s otherwise


class SlowStream(io.RawIOBase):
    """Audio from a store that hands out 4 KiB every 0.2 s."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        time.sleep(0.2)
        piece = self.data[self.position : self.position + min(len(buffer), 4096)]
        buffer[: len(piece)] = piece
        self.position += len(piece)
        return len(piece)


def test_a_slow_upload_meets_the_deadline(served: Sandbox) -> None:
    from airflow_provider_kubeai_speech.exceptions import RequestDeadlineError

    data = CLIP.read_bytes() * 4
    started = time.monotonic()
    with pytest.raises(RequestDeadlineError, match="while uploading"):
        hook(total_timeout=1).transcribe("whisper", lambda: SlowStream(data), filename="slow.wav")
    assert time.monotonic() - started < 10  # 36 s to upload it all


# -- 10. uploads stream from any readable binary file object -----------------------------------------


class ReadOnly:
    """Only ``read`` (and ``close``): a socket-like stream with no length, no fileno, no seek."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.stream, self.fail_after = io.BytesIO(data), fail_after
        self.read_sizes: list[int] = []
        self.bytes_read = 0
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self.fail_after is not None and self.bytes_read >= self.fail_after:
            raise StorageError("An error occurred (SlowDown) when calling the GetObject operation")
        self.read_sizes.append(size)
        block = self.stream.read(size)
        self.bytes_read += len(block)
        return block

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> ReadOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sized(ReadOnly):
    """``read`` plus an s3fs-like ``size`` attribute, not seekable."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.size = len(data)


class StorageError(Exception):
    """Like botocore's ClientError: not an OSError."""


def test_uploads_from_an_fsspec_file(served: Sandbox) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/clips/call.wav", CLIP.read_bytes())
    expected = fake_transcript_text(CLIP.read_bytes())
    h = hook()
    assert (
        h.transcribe("whisper", lambda: fs.open("/clips/call.wav", "rb"), filename="call.wav").text
        == expected
    )
    with fs.open("/clips/call.wav", "rb") as handle:  # an open file object, read from where it stands
        handle.seek(0)
        assert h.transcribe("whisper", lambda: handle, filename="call.wav").text == expected


def test_uploads_from_an_s3fs_file(served: Sandbox) -> None:
    """An s3fs file has no ``__len__``, ``len``, usable ``fileno`` or ``getvalue``: requests-toolbelt
    alone cannot size it (``TypeError: unsupported operand type(s) for -: 'NoneType' and 'int'``)."""
    boto3 = pytest.importorskip("boto3")
    s3fs = pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer
    from requests_toolbelt.multipart.encoder import total_len

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint, keys = f"http://{host}:{port}", {"aws_access_key_id": "k", "aws_secret_access_key": "s"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
        s3.create_bucket(Bucket="calls")
        s3.put_object(Bucket="calls", Key="call.wav", Body=CLIP.read_bytes())
        fs = s3fs.S3FileSystem(
            key="k", secret="s", endpoint_url=endpoint, skip_instance_cache=True, use_listings_cache=False
        )
        opened: list[Any] = []

        def opener() -> Any:
            opened.append(fs.open("calls/call.wav", "rb"))
            return opened[-1]

        result = hook().transcribe("whisper", opener, filename="call.wav")
        assert result.text == fake_transcript_text(CLIP.read_bytes())
        assert result.bytes_sent > CLIP.stat().st_size and opened[-1].closed
        assert total_len(fs.open("calls/call.wav", "rb")) is None  # why the reader gives the length
    finally:
        server.stop()


@pytest.mark.parametrize("kind", [ReadOnly, Sized], ids=["no length (spooled)", "size attribute"])
def test_uploads_from_a_stream_without_len_or_fileno(served: Sandbox, kind: type[ReadOnly]) -> None:
    data = CLIP.read_bytes()
    streams: list[ReadOnly] = []

    def opener() -> Any:
        streams.append(kind(data))
        return streams[-1]

    served.stats.reset()
    result = hook().transcribe("whisper", opener, filename="call.wav")
    assert result.text == fake_transcript_text(data)
    (stream,) = streams
    assert stream.bytes_read == len(data) and stream.closed  # one pass, closed
    assert max(stream.read_sizes) <= 1 << 16  # read in blocks, never whole
    assert result.bytes_sent > len(data) and served.stats.snapshot()["bytes_received"] >= result.bytes_sent


def test_a_storage_error_while_uploading_is_a_per_file_failure(served: Sandbox, tmp_path: Path) -> None:
    from airflow_provider_kubeai_speech.exceptions import AudioReadError

    data = CLIP.read_bytes()
    with pytest.raises(
        AudioReadError, match=r"reading the audio failed: StorageError: An error occurred \(SlowDown\)"
    ):
        hook().transcribe("whisper", lambda: ReadOnly(data, fail_after=1000), filename="call.wav")

    items = resolve_inputs([str(CLIP), str(CLIP.parent / "call-002.wav")])
    items[1].opener = lambda: lambda: ReadOnly(data, fail_after=1000)  # type: ignore[method-assign]
    batch = BatchTranscriber(
        hook().transcribe,
        "whisper",
        BatchOptions(max_failed=1),
        OutputFolder(tmp_path / "out"),
        logging.getLogger("t"),
    )
    summary = batch.run(items)
    assert summary.count("ok") == 1 and summary.count("failed") == 1
    assert "StorageError" in (summary.failures[0].error or "")
    assert isinstance(AudioReadError("x"), KubeAISpeechError)


# -- 6. REQUESTS_CA_BUNDLE ---------------------------------------------------------------------------


def test_requests_ca_bundle_is_honoured_when_the_connection_names_no_ca(
    make_kubeai_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox = ready(make_kubeai_sandbox(tls=True, startup_delay=0.1))
    conn = json.loads(os.environ["AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT"])
    ca = conn["extra"].pop("ca_bundle")
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    assert hook().transcribe("whisper", CLIP).text
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(KubeAIEndpointError, match=r"REQUESTS_CA_BUNDLE=.*missing.pem.* does not exist"):
        hook().transcribe("whisper", CLIP)
    # the connection's own ca_bundle wins over the environment
    conn["extra"]["ca_bundle"] = ca
    monkeypatch.setenv("AIRFLOW_CONN_KUBEAI_SPEECH_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", __file__)
    assert hook().transcribe("whisper", CLIP).text
    assert sandbox.stats.snapshot()["transcriptions"] == 2


def test_a_text_answer_without_a_charset_is_read_as_utf8(served: Sandbox) -> None:
    """requests assumes Latin-1 for text/* without a charset; transcripts are UTF-8."""
    text = "Grüße aus Köln, café à l'œil, Привет"
    served.faults.update({"canned_answer": {"status": 200, "content_type": "text/plain", "body": text}})
    result = hook().transcribe("whisper", CLIP, response_format="text")
    assert result.content.strip() == text


def test_only_http_urls_are_absolute(served: Sandbox) -> None:
    client = hook().endpoint
    assert client.url("models?next=http://elsewhere") == f"{client.base_url}/models?next=http://elsewhere"
    assert client.url("https://gateway.example.com/x") == "https://gateway.example.com/x"
