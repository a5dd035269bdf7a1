"""A real S3 API on loopback for tests and benchmarks: moto's server mode, a record of every
request it answered (bytes in and out per object), and a TCP proxy in front that can be cut.

Nothing here mocks S3: clients (s3fs through Airflow's amazon provider, boto3) speak real HTTP to
moto's server; the record is kept by a WSGI layer around moto's own application, and the proxy
only forwards bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from moto.server import ThreadedMotoServer

ACCESS_KEY, SECRET_KEY, REGION = "testing-key", "testing-secret", "us-east-1"


@dataclass
class S3Request:
    """One request moto answered: ``key`` is ``bucket/key`` (path-style addressing)."""

    method: str
    key: str
    query: str
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class Traffic:
    """Every request moto's application answered, with the bytes of each body (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[S3Request] = []

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests(self, key_prefix: str = "", method: str | None = None) -> list[S3Request]:
        with self._lock:
            return [
                r
                for r in self._requests
                if r.key.startswith(key_prefix) and (method is None or r.method == method)
            ]

    def bytes_read(self, key_prefix: str = "") -> int:
        """Body bytes moto sent back for GETs of objects under ``key_prefix``."""
        return sum(r.bytes_out for r in self.requests(key_prefix, "GET"))

    def bytes_moved(self, key_prefix: str = "") -> int:
        """Body bytes in both directions for requests under ``key_prefix``."""
        return sum(r.bytes_in + r.bytes_out for r in self.requests(key_prefix))

    def wrap(self, app: Any) -> Any:
        def counted(environ: dict[str, Any], start_response: Any) -> Any:
            record = S3Request(
                environ["REQUEST_METHOD"],
                unquote(environ.get("PATH_INFO", "")).lstrip("/"),
                environ.get("QUERY_STRING", ""),
            )
            with self._lock:  # listed at once, counted as it goes: complete when the client has it all
                self._requests.append(record)
            body = environ.get("wsgi.input")
            if body is not None:
                environ["wsgi.input"] = _CountingReader(body, record)

            def start(status: str, headers: Any, exc_info: Any = None) -> Any:
                record.status = int(status.split(" ", 1)[0])
                return start_response(status, headers, exc_info)

            result = app(environ, start)
            try:
                for chunk in result:
                    record.bytes_out += len(chunk)
                    yield chunk
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

        return counted


class _CountingReader:
    def __init__(self, stream: Any, record: S3Request) -> None:
        self._stream, self._record = stream, record

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._record.bytes_in += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._record.bytes_in += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count: int = self._stream.readinto(buffer)
        self._record.bytes_in += count or 0
        return count

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class MotoS3(ThreadedMotoServer):
    """``ThreadedMotoServer`` on 127.0.0.1 and a free port, recording its traffic."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.traffic = Traffic()

    def _server_entry(self) -> None:  # ThreadedMotoServer's, with moto's app inside the record
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = self.traffic.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget every bucket and object (moto's own reset API) and the traffic record."""
        import requests

        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
        self.traffic.clear()

    def stop(self) -> None:
        super().stop()
        if self._server is not None:
            self._server.server_close()


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; :meth:`cut` makes the store unreachable
    (open connections reset, new ones refused) until :meth:`restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._up = threading.Event()
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self.bytes_up = self.bytes_down = 0
        self.connections = 0
        self._up.set()
        self._thread = threading.Thread(target=self._serve, name="s3-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        listener.settimeout(0.05)
        return listener

    def _serve(self) -> None:
        while not self._stopped.is_set():
            if not self._up.wait(0.05):
                continue
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
                with self._lock:
                    if up:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._open.discard(sock)

    def cut(self) -> None:
        """The store goes away: connections in use are reset, new ones refused."""
        self._up.clear()
        time.sleep(0.06)  # the accept loop lets go of the listener
        self._listener.close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self._listener = self._listen(self.port)
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._stopped.set()
        self._thread.join(5)


def aws_connection(endpoint_url: str) -> str:
    """``AIRFLOW_CONN_AWS_DEFAULT``: an ``aws`` connection to a local S3 API."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": endpoint_url, "region_name": REGION},
        }
    )


def aws_environment(endpoint_url: str, scratch: str) -> dict[str, str | None]:
    """Environment for tests against a local S3 API: ``aws_default`` points at it, and boto's own
    credential chain finds nothing (no keys, no profile files, no instance metadata) and sends
    anything that bypasses the connection to a closed loopback port, never to AWS.
    Values of None mean "unset"."""
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(endpoint_url),
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_ROLE_ARN": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_CONFIG_FILE": os.path.join(scratch, "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(scratch, "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: refused at once
        "AWS_MAX_ATTEMPTS": "2",
        "AWS_RETRY_MODE": "standard",
    }


def apply_environment(env: dict[str, str | None], target: Any = None) -> None:
    """Set (or, for None, unset) each variable in ``target`` (os.environ by default)."""
    target = os.environ if target is None else target
    for key, value in env.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value


def direct_client(endpoint_url: str) -> Any:
    """A boto3 S3 client straight to moto (for arranging and inspecting test data)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def clear_storage_caches() -> None:
    """Forget cached filesystems: Airflow's attached stores and fsspec's s3fs instances, so no
    test sees another's endpoint, credentials or directory listings."""
    from airflow.sdk.io import store

    store._STORE_CACHE.clear()
    with contextlib.suppress(ImportError):
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()


class MotoProcess:
    """moto's server in a child process (for benchmarks measuring the client's own memory).

    Its traffic is read over HTTP at ``/_traffic`` (a GET answered by the child, not by moto).
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.s3_server"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("moto server process did not start")
        self.url: str = json.loads(line)["url"]

    def traffic(self, key_prefix: str = "") -> dict[str, int]:
        import requests

        response = requests.get(f"{self.url}/_traffic", params={"prefix": key_prefix}, timeout=30)
        response.raise_for_status()
        result: dict[str, int] = response.json()
        return result

    def clear_traffic(self) -> None:
        import requests

        requests.delete(f"{self.url}/_traffic", timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _serve_forever() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = MotoS3()
    traffic = server.traffic

    def with_traffic_api(app: Any) -> Any:
        def handle(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("PATH_INFO") != "/_traffic":
                return app(environ, start_response)
            if environ["REQUEST_METHOD"] == "DELETE":
                traffic.clear()
                body = b"{}"
            else:
                from urllib.parse import parse_qs

                prefix = parse_qs(environ.get("QUERY_STRING", "")).get("prefix", [""])[0]
                requests = traffic.requests(prefix)
                body = json.dumps(
                    {
                        "requests": len(requests),
                        "bytes_read": traffic.bytes_read(prefix),
                        "bytes_in": sum(r.bytes_in for r in requests),
                        "bytes_out": sum(r.bytes_out for r in requests),
                    }
                ).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]

        return handle

    original = traffic.wrap
    traffic.wrap = lambda app: with_traffic_api(original(app))  # type: ignore[method-assign]
    server.start()
    print(json.dumps({"url": server.url}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _serve_forever()
