"""KubeAI's OpenAI-compatible endpoint for speech, plus the sandbox's admin endpoints.

- ``GET /openai/v1/models?feature=SpeechToText``
- ``POST /openai/v1/audio/transcriptions`` (multipart, streamed to disk as it arrives)
- ``/sandbox/faults`` (GET, PUT, DELETE), ``/sandbox/stats`` (GET, DELETE), ``/sandbox/healthz``,
  ``/sandbox/compact`` (POST: forget watch history, so old resourceVersions get 410)
"""

from __future__ import annotations

import hmac
import json
import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_kubeai import rendering
from local_kubeai.audio import AudioDecodeError, decode_upload, pcm_seconds
from local_kubeai.controller import ModelNotFound, NoHostInTime
from local_kubeai.engines import DecodeOptions, Transcription, file_digest
from local_kubeai.http import BaseHandler
from local_kubeai.rendering import CONTENT_TYPES, RESPONSE_FORMATS

if TYPE_CHECKING:
    from local_kubeai.server import Sandbox

TRANSCRIPTIONS = "/openai/v1/audio/transcriptions"
logging.getLogger("python_multipart").setLevel(logging.WARNING)


class _BadRequest(Exception):
    pass


class _Unprocessable(Exception):
    """A form value the server's FastAPI validation refuses (422)."""


_TRUE = ("1", "true", "on", "yes", "t", "y")
_FALSE = ("0", "false", "off", "no", "f", "n")
_GRANULARITIES = ({"segment"}, {"word"}, {"segment", "word"})


def _form_bool(fields: dict[str, str], name: str) -> bool:
    value = (fields.get(name) or "").strip().lower()
    if not value or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise _Unprocessable(f"{name}: Input should be a valid boolean, unable to interpret input {value!r}")


def decode_options(fields: dict[str, str]) -> DecodeOptions:
    """The form mapped as faster-whisper-server 0.5.0's ``transcribe_file`` maps it.

    ``timestamp_granularities[]`` defaults to ``segment``; word timestamps are on exactly when it
    contains ``word``. One temperature (default 0.0), ``vad_filter`` (default off) and
    ``hotwords`` are passed through; ``prompt`` becomes the initial prompt.
    """
    raw = fields.get("timestamp_granularities")
    granularities = {g.strip() for g in raw.split(",") if g.strip()} if raw is not None else {"segment"}
    if granularities and granularities not in _GRANULARITIES:
        raise _Unprocessable(f"{sorted(granularities)} is not a valid value for `timestamp_granularities[]`.")
    try:
        temperature = float(fields["temperature"]) if fields.get("temperature") else 0.0
    except ValueError:
        raise _Unprocessable("temperature: Input should be a valid number") from None
    return DecodeOptions(
        language=fields.get("language") or None,
        prompt=fields.get("prompt") or None,
        temperature=temperature,
        word_timestamps="word" in granularities,
        vad_filter=_form_bool(fields, "vad_filter"),
        hotwords=fields.get("hotwords") or None,
    )


class KubeAIHandler(BaseHandler):
    """Routes one request to the KubeAI endpoint or the sandbox's admin endpoints."""

    @property
    def sandbox(self) -> Sandbox:
        return self.server.app  # type: ignore[no-any-return,unused-ignore]

    def _dispatch(self) -> None:
        path, method = self.path_only, self.command
        try:
            if path.startswith("/sandbox/"):
                self._admin(path, method)
                return
            if not self._gateway_allows():
                self.send_json(401, {"error": "unauthorized"}, {"WWW-Authenticate": "Bearer"})
                return
            if path == "/openai/v1/models" and method == "GET":
                self._list_models()
            elif path == TRANSCRIPTIONS and method == "POST":
                self._transcribe()
            elif path == "/openai/v1/audio/translations":
                self.send_json(404, {"error": "not found"})
            else:
                self.send_json(404, {"error": f"no route for {method} {path}"})
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def _gateway_allows(self) -> bool:
        token = self.sandbox.config.gateway_token
        if not token:
            return True
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())

    # -- models ------------------------------------------------------------------------------

    def _list_models(self) -> None:
        feature = self.query.get("feature") or "TextGeneration"
        items, _ = self.sandbox.store.list_objects(self.sandbox.namespace)
        data = []
        for obj in items:
            spec = obj.get("spec", {})
            if feature not in spec.get("features", []):
                continue
            created = int(
                time.mktime(time.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
            )
            data.append(
                {
                    "id": obj["metadata"]["name"],
                    "created": created,
                    "object": "model",
                    "owned_by": "",
                    "features": spec.get("features", []),
                }
            )
        self.send_json(200, {"object": "list", "data": data})

    # -- transcriptions ----------------------------------------------------------------------

    def _transcribe(self) -> None:
        # The outcome is counted before the answer goes out: a client that reads /sandbox/stats
        # right after its answer must find its own request there.
        stats = self.sandbox.stats
        stats.request_started()
        with tempfile.TemporaryDirectory(prefix="kubeai-sandbox-upload-") as tmp:
            try:
                outcome, received, digest, respond = self._handle_transcription(Path(tmp))
            except (ConnectionError, BrokenPipeError, OSError):
                stats.request_finished("client-gone")
                self.close_connection = True
                return
            stats.request_finished(outcome, received=received, digest=digest)
            try:
                respond()
            except (ConnectionError, BrokenPipeError, OSError):
                self.close_connection = True

    def _handle_transcription(self, folder: Path) -> tuple[str, int, str | None, Any]:
        """Outcome, bytes received, audio digest, and the function that sends the answer."""
        sandbox = self.sandbox
        received, digest = 0, None
        fields: dict[str, str] = {}

        def error(code: int, message: str, headers: dict[str, str] | None = None) -> Any:
            return lambda: self.send_json(code, {"error": message}, headers)

        try:
            fields, upload, received = self._read_multipart(folder)
            fault = sandbox.faults.transcription_fault()
            if fault == "drop":
                return "dropped", received, None, self.drop_connection
            if isinstance(fault, int):
                headers = {}
                if fault in (429, 503) and sandbox.faults.faults.retry_after:
                    headers["Retry-After"] = str(sandbox.faults.faults.retry_after)
                return str(fault), received, None, error(fault, f"injected fault: {fault}", headers)
            canned = sandbox.faults.faults.canned_answer
            if canned:
                return "canned", received, None, lambda: self._send_canned(canned)
            model = fields.get("model", "")
            if upload is None or not model:
                raise _BadRequest("multipart form needs a 'file' part and a 'model' field")
            response_format = fields.get("response_format") or "json"
            if response_format not in RESPONSE_FORMATS:
                raise _BadRequest(
                    f"response_format {response_format!r} is not one of {', '.join(RESPONSE_FORMATS)}"
                )
            name, _, adapter = model.partition("_")
            if adapter:
                return "404", received, None, error(404, f'model not found: "{model}"')
            try:
                pcm = decode_upload(upload)
            except AudioDecodeError as err:
                raise _BadRequest(f"Failed to decode audio: {err}") from None
            options = decode_options(fields)
            digest = file_digest(upload)
            result = self._run_engine(name, pcm, options)
            return "200", received, digest, lambda: self._answer(result, response_format, fields, options)
        except _BadRequest as err:
            return "400", received, None, error(400, str(err))
        except _Unprocessable as err:
            return "422", received, None, error(422, str(err))
        except ModelNotFound:
            return "404", received, None, error(404, f'model not found: "{fields.get("model", "")}"')
        except NoHostInTime:
            return "504", received, None, error(504, "timed out waiting for a ready replica")
        except AudioDecodeError as err:
            return "500", received, None, error(500, f"Internal Server Error: {err}")

    def _read_multipart(self, folder: Path) -> tuple[dict[str, str], Path | None, int]:
        from python_multipart import create_form_parser

        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
            # drain what was sent so the connection stays usable
            for _ in self.iter_body():
                pass
            raise _BadRequest("expected a multipart/form-data body")
        fields: dict[str, str] = {}
        uploads: list[Any] = []

        def on_field(field: Any) -> None:
            name = (field.field_name or b"").decode().removesuffix("[]")
            value = (field.value or b"").decode("utf-8", "replace")
            fields[name] = value if name not in fields else fields[name] + "," + value

        def on_file(file: Any) -> None:
            if (file.field_name or b"") == b"file":
                uploads.append(file)

        headers = {"Content-Type": content_type.encode("latin-1")}
        config = {
            "UPLOAD_DIR": str(folder),
            "MAX_MEMORY_FILE_SIZE": 0,
            "UPLOAD_KEEP_FILENAME": False,
            "UPLOAD_DELETE_TMP": False,
        }
        parser = create_form_parser(headers, on_field, on_file, config=config)
        received = 0
        try:
            for chunk in self.iter_body():
                received += len(chunk)
                parser.write(chunk)
            parser.finalize()
        except ConnectionError:
            raise
        except Exception as err:
            raise _BadRequest(f"malformed multipart body: {err}") from None
        if not uploads:
            return fields, None, received
        upload = uploads[0]
        if upload.in_memory:
            upload.flush_to_disk()
        upload.file_object.flush()
        return fields, Path(upload.actual_file_name.decode()), received

    def _run_engine(self, name: str, pcm: bytes, options: DecodeOptions) -> Transcription:
        sandbox = self.sandbox
        pod = sandbox.controller.acquire(sandbox.namespace, name)
        try:
            delay = (
                sandbox.config.latency_per_request
                + pcm_seconds(pcm) * sandbox.config.latency_per_audio_second
            )
            if pod.served == 0:
                delay += sandbox.config.first_request_delay
            if delay > 0:
                time.sleep(delay)
            return sandbox.engine.transcribe(pcm, options)
        finally:
            sandbox.controller.release(sandbox.namespace, name, pod)

    def _answer(
        self, result: Transcription, response_format: str, fields: dict[str, str], options: DecodeOptions
    ) -> None:
        segments = [
            _with_words(s, result.words if options.word_timestamps else None) for s in result.segments
        ]
        if (fields.get("stream") or "").lower() in _TRUE:
            self.start_chunked("text/event-stream")
            for index, segment in enumerate(segments):
                self.write_chunk(
                    f"data: {self._streamed(result, segment, index, response_format)}\n\n".encode()
                )
            self.end_chunked()
            return
        content_type = CONTENT_TYPES[response_format]
        if response_format == "json":
            self.send_json(200, {"text": rendering.segments_text(segments)})
        elif response_format == "verbose_json":
            words = result.words if options.word_timestamps else None
            body = rendering.verbose_json(
                language=result.language, duration=result.duration, segments=segments, words=words
            )
            self.send_json(200, body)
        elif response_format == "text":
            self.send_bytes(200, rendering.segments_text(segments).encode(), content_type)
        elif response_format == "srt":
            self.send_bytes(200, rendering.srt(segments).encode(), content_type)
        else:
            self.send_bytes(200, rendering.vtt(segments).encode(), content_type)

    @staticmethod
    def _streamed(result: Transcription, segment: dict[str, Any], index: int, response_format: str) -> str:
        """One server-sent event's data, as the server streams each segment."""
        if response_format == "text":
            return str(segment["text"])
        if response_format == "json":
            return json.dumps({"text": str(segment["text"]).strip()})
        if response_format == "verbose_json":
            body = rendering.verbose_json(
                language=result.language,
                duration=round(segment["end"] - segment["start"], 3),
                segments=[segment],
                words=segment.get("words"),
            )
            body["text"] = segment["text"]
            return json.dumps(body)
        cue = rendering.srt([segment]) if response_format == "srt" else rendering.vtt([segment])
        if response_format == "srt":
            cue = f"{index + 1}" + cue[1:]
        return cue

    def _send_canned(self, answer: dict[str, Any]) -> None:
        status = int(answer.get("status", 200))
        body = str(answer.get("body", "")).encode()
        if answer.get("echo_headers"):
            body += "".join(f"\n{key}: {value}" for key, value in self.headers.items()).encode()
        repeat = int(answer.get("repeat", 1))
        rate = float(answer.get("bytes_per_second", 0))
        chunked = bool(answer.get("chunked"))
        has_body = status >= 200 and status not in (204, 304)
        self.send_response(status)
        if "content_type" in answer:
            self.send_header("Content-Type", str(answer["content_type"]))
        for key, value in dict(answer.get("headers") or {}).items():
            self.send_header(str(key), str(value))
        if has_body:
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body) * repeat))
        self.end_headers()
        if not has_body:
            return
        write = self.write_chunk if chunked else self.wfile.write
        for _ in range(repeat):
            if rate > 0:
                for index in range(len(body)):
                    write(body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(1 / rate)
            elif body:
                write(body)
        if chunked:
            self.end_chunked()

    # -- admin -------------------------------------------------------------------------------

    def _admin(self, path: str, method: str) -> None:
        sandbox = self.sandbox
        if path == "/sandbox/healthz":
            self.send_json(200, {"ok": True})
        elif path == "/sandbox/stats" and method == "GET":
            self.send_json(200, sandbox.stats.snapshot())
        elif path == "/sandbox/stats" and method == "DELETE":
            sandbox.stats.reset()
            self.send_json(200, sandbox.stats.snapshot())
        elif path == "/sandbox/faults" and method == "GET":
            self.send_json(200, asdict(sandbox.faults.faults))
        elif path == "/sandbox/faults" and method == "PUT":
            try:
                faults = sandbox.faults.update(json.loads(self.read_body() or b"{}"))
            except (ValueError, TypeError) as err:
                self.send_json(400, {"error": str(err)})
                return
            self.send_json(200, asdict(faults))
        elif path == "/sandbox/faults" and method == "DELETE":
            sandbox.faults.reset()
            self.send_json(200, asdict(sandbox.faults.faults))
        elif path == "/sandbox/compact" and method == "POST":
            sandbox.store.compact()
            self.send_json(200, {"resourceVersion": sandbox.store.resource_version})
        else:
            self.send_json(404, {"error": f"no admin route for {method} {path}"})


def _with_words(segment: dict[str, Any], words: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A segment with its own ``words`` (None without word timestamps), as the server sends it."""
    out = dict(segment)
    if words is None:
        out["words"] = None
    elif out.get("words") is None:
        start, end = float(segment["start"]), float(segment["end"])
        out["words"] = [w for w in words if start <= (w["start"] + w["end"]) / 2 <= end]
    return out
