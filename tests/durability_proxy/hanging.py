"""HangingServer: a TCP server on 127.0.0.1 that accepts connections and never answers.

It models a hung FHIR server (a stuck process behind a live socket). It stops by itself after
`lifetime` seconds, closing every connection it holds, so a test that goes wrong cannot hang.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class HangingServer:
    """Accepts, reads and holds connections; never writes a byte."""

    def __init__(self, lifetime: float = 120.0) -> None:
        self.lifetime = lifetime
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hanging-server", daemon=True)
        self.accepted = 0  # connections accepted so far

    @property
    def base_url(self) -> str:
        """A FHIR base URL on this server."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/fhir"

    def start(self) -> HangingServer:
        """Start accepting in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every held connection (clients see them reset)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        with self._lock:
            for conn in self._held:
                with contextlib.suppress(OSError):
                    conn.close()
            self._held.clear()
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> HangingServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._held.append(conn)
                self.accepted += 1
        if not self._stop.is_set():
            threading.Thread(target=self.stop, daemon=True).start()
