"""A fault-injecting HTTP proxy of the test suite's own, between boto3 and the moto server on
loopback: it forwards every request, except those a rule answers itself (AccessDenied, throttling,
5xx) — the failures real AWS produces and moto cannot."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# A rule sees the request body and answers (status, body) to inject a fault, RESET to drop the
# connection without an answer, a number of seconds to wait before forwarding, or None to forward.
RESET = "reset"
Rule = Callable[[bytes], tuple[int, str] | str | float | None]

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def query_error(code: str, message: str, status: int = 400) -> tuple[int, str]:
    """An error in the query protocol's XML (STS, EC2-style services answer like this)."""
    return status, (f'<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>'
                    "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>")


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules: list[Rule] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                for rule in proxy.rules:
                    fault = rule(body)
                    if fault == RESET:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if isinstance(fault, (int, float)):
                        time.sleep(fault)
                        break
                    if fault is not None:
                        status, text = fault
                        data = text.encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "text/xml")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (Ctrl-C, --timeout) is what those tests do on purpose

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def first(times: int, action: str, fault: tuple[int, str] | str | float) -> Rule:
    """A rule that injects ``fault`` into the first ``times`` requests for an API action."""
    left = {"n": times}
    lock = threading.Lock()

    def rule(body: bytes) -> tuple[int, str] | str | float | None:
        if f"Action={action}&".encode() not in body + b"&":
            return None
        with lock:
            if left["n"] <= 0:
                return None
            left["n"] -= 1
        return fault

    return rule
