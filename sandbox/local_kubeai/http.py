"""A small threaded HTTP/1.1 server with the controls a test double needs.

Full control of the socket matters here: watch streams are chunked responses held open for
minutes, uploads are streamed to disk, and fault injection must be able to drop a connection
without an answer.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("local_kubeai")


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded server that knows its owner (the sandbox) and can be shut down promptly."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        app: Any,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(address, handler)
        self.app = app
        self.tls = tls
        self.stopping = False

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class BaseHandler(BaseHTTPRequestHandler):
    """JSON, chunked streaming, streamed request bodies, and dropping connections."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer (Go servers, KubeAI's proxy included, set it).
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    server_version = "kubeai-sandbox"

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                raise

    def _dispatch(self) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def path_only(self) -> str:
        return urlsplit(self.path).path.rstrip("/") or "/"

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}

    def send_json(
        self,
        code: int,
        body: Any,
        headers: dict[str, str] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """``extra``: headers that may repeat (one ``Warning`` per unknown field)."""
        data = json.dumps(body).encode()
        self.send_bytes(code, data, "application/json", headers, extra)

    def send_bytes(
        self,
        code: int,
        data: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in [*(headers or {}).items(), *(extra or [])]:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    _body_started = False
    _DRAIN_LIMIT = 1 << 20

    def handle_one_request(self) -> None:
        self._body_started = False
        super().handle_one_request()
        if not self.close_connection and self.command in ("POST", "PUT", "PATCH", "DELETE"):
            self._finish_body()

    def _finish_body(self) -> None:
        # An answer sent before the body was read must not leave the body in a kept-alive stream.
        if self._body_started:
            return
        length = int(self.headers.get("Content-Length") or 0) if self.headers else 0
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked" if self.headers else False
        if chunked or length > self._DRAIN_LIMIT:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def iter_body(self, chunk_size: int = 1 << 16) -> Any:
        """The request body in pieces: Content-Length or chunked transfer encoding."""
        self._body_started = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                remaining = size
                while remaining:
                    piece = self.rfile.read(min(chunk_size, remaining))
                    if not piece:
                        raise ConnectionError("client closed the connection mid-body")
                    remaining -= len(piece)
                    yield piece
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(chunk_size, remaining))
            if not piece:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(piece)
            yield piece

    def read_body(self) -> bytes:
        return b"".join(self.iter_body())

    def drop_connection(self) -> None:
        """Close the socket without answering (a dropped connection, as a crashing pod causes)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
