"""FaultProxy: forwards HTTP to the real FHIR server, and on request answers 503, drops, delays or
holds a response, or refuses connections. It is not a FHIR server: every answer that is not a
fault comes from the real one.

A plan decides the fault of each request from what it saw (method, path, body); faults that act
after forwarding (DROP_AFTER, HOLD, DELAY) model the worst case for durability: the server has
committed the write, and the client never hears so.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Fault(StrEnum):
    """What the proxy does to one request."""

    PASS = "pass"  # forward and answer with the server's response
    UNAVAILABLE = "503"  # answer 503 without forwarding
    UNAVAILABLE_RETRY_AFTER = "503-retry-after"  # 503 with Retry-After (FaultProxy.retry_after)
    DROP_BEFORE = "drop-before"  # close the connection; the server never sees the request
    DROP_AFTER = "drop-after"  # forward (the server commits), then close without answering
    DELAY = "delay"  # forward, then wait `delay_seconds` before answering
    HOLD = "hold"  # forward, then wait until release() before answering


@dataclass
class Seen:
    """One request the proxy received, the fault it applied and the server's status (if asked)."""

    method: str
    path: str
    body: bytes
    fault: Fault
    status: int | None = None

    def json(self) -> Any:
        """The request body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None

    def put_urls(self) -> list[str]:
        """The request.url of every PUT entry, for a transaction/batch Bundle POSTed to the base."""
        body = self.json()
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            return []
        return [
            e["request"]["url"] for e in body.get("entry", []) if e["request"]["method"] == "PUT"
        ]


Plan = Callable[[Seen], Fault]


def is_bundle_post(seen: Seen) -> bool:
    """A transaction or batch: POST to the base URL."""
    return seen.method == "POST" and seen.path.split("?")[0] in ("", "/")


def flaky_plan(seed: int, rate: float, faults: tuple[Fault, ...]) -> Plan:
    """Each request gets one of `faults` with probability `rate`, from a seeded generator."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def plan(_seen: Seen) -> Fault:
        with lock:
            if rng.random() >= rate:
                return Fault.PASS
            return rng.choice(faults)

    return plan


def _pass(_seen: Seen) -> Fault:
    return Fault.PASS


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of `upstream`; start(), stop(), refuse(), accept()."""

    upstream: str
    plan: Plan = _pass
    delay_seconds: float = 0.5
    retry_after: str = "1"  # the Retry-After of UNAVAILABLE_RETRY_AFTER answers
    hold_timeout: float = 60.0
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)  # set when a HOLD arrives
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        """The proxy's base URL, standing in for the FHIR server's."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Listen (on the same port as before, after refuse()) and serve in a thread."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; open connections are closed and new ones refused."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    refuse = stop

    def accept(self) -> None:
        """Listen again on the same port after refuse()."""
        self._release.clear()
        self.start()

    def release(self) -> None:
        """Let held responses go (or, if their client is gone, be discarded)."""
        self._release.set()

    def requests(self, method: str | None = None) -> list[Seen]:
        """What was received so far, optionally of one method."""
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _forward(
        self, seen: Seen, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            connection.request(seen.method, target.path.rstrip("/") + seen.path, seen.body, headers)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.getheaders(), body
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server: drops hit reused sockets

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reports what matters

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, body, Fault.PASS)
                seen.fault = proxy.plan(seen)
                proxy._record(seen)
                if seen.fault in (Fault.UNAVAILABLE, Fault.UNAVAILABLE_RETRY_AFTER):
                    self._answer_unavailable(seen.fault is Fault.UNAVAILABLE_RETRY_AFTER)
                    return
                if seen.fault is Fault.DROP_BEFORE:
                    self._drop()
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "host"
                }
                status, response_headers, response_body = proxy._forward(seen, headers)
                seen.status = status
                if seen.fault is Fault.DROP_AFTER:
                    self._drop()
                    return
                if seen.fault is Fault.DELAY:
                    time.sleep(proxy.delay_seconds)
                if seen.fault is Fault.HOLD:
                    proxy.held.set()
                    proxy._release.wait(proxy.hold_timeout)
                # As a reverse proxy would: links (next pages, Location) point back through us.
                upstream, here = proxy.upstream.rstrip("/"), proxy.base_url
                response_body = response_body.replace(upstream.encode(), here.encode())
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    for name, value in response_headers:
                        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value.replace(upstream, here))
                    self.send_header("Content-Length", str(len(response_body)))
                    self.end_headers()
                    self.wfile.write(response_body)

            def _answer_unavailable(self, retry_after: bool) -> None:
                body = json.dumps(
                    {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "transient"}],
                    }
                ).encode()
                self.send_response(HTTPStatus.SERVICE_UNAVAILABLE)
                self.send_header("Content-Type", "application/fhir+json")
                if retry_after:
                    self.send_header("Retry-After", proxy.retry_after)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drop(self) -> None:
                # No status line at all: the client sees the connection closed under it.
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        return Handler
