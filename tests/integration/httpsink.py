"""A small HTTP server for the HTTP sink connector's tests: records every request
(method, path, headers, body) and can fail the first N requests with a status
(injected failures), on a loopback port the kernel picks.

    from httpsink import http_server   # the fixture (factory)

    def test_x(http_server):
        srv = http_server(fail_first=3, fail_status=500)
        srv.url                      # http://127.0.0.1:PORT/
        srv.delivered()              # the requests answered 200, in order
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Request:
    method: str
    path: str
    headers: dict      # lower-cased names
    body: bytes
    status: int        # what the server answered


class RecordingServer:
    def __init__(self, fail_first: int = 0, fail_status: int = 500):
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    failing = len(server.requests) < server.fail_first
                    status = server.fail_status if failing else 200
                    server.requests.append(Request(self.command, self.path,
                                                   {k.lower(): v for k, v in self.headers.items()},
                                                   body, status))
                answer = b"injected failure" if failing else b"ok"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="httpsink", daemon=True)
        self.thread.start()

    def all(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def delivered(self) -> list[Request]:
        return [r for r in self.all() if r.status == 200]

    def failed(self) -> list[Request]:
        return [r for r in self.all() if r.status != 200]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    """Factory: http_server(fail_first=0, fail_status=500) -> a started RecordingServer."""
    servers: list[RecordingServer] = []

    def _start(fail_first: int = 0, fail_status: int = 500) -> RecordingServer:
        s = RecordingServer(fail_first, fail_status)
        servers.append(s)
        return s

    yield _start
    for s in servers:
        s.stop()
