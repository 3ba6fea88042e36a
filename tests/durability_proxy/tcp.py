"""TcpGate: a plain TCP forwarder on 127.0.0.1 in front of a database, that can refuse.

Open, it forwards every connection to the upstream; shut, its port is closed (connections are
refused) and every forwarded connection is cut, as when a database server goes away. It stops
by itself after `lifetime` seconds.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class TcpGate:
    """Forward 127.0.0.1:<port> to `upstream` while open; refuse and cut while shut."""

    def __init__(self, upstream: tuple[str, int], lifetime: float = 300.0) -> None:
        self.upstream = upstream
        self.ends = time.monotonic() + lifetime
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> TcpGate:
        """Listen (again) on the gate's port and forward."""
        with self._lock:
            if self._listener is not None:
                return self
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            listener.settimeout(0.2)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def shut(self) -> None:
        """Close the port and cut every connection through the gate."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while time.monotonic() < self.ends:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # shut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # shut meanwhile
                    client.close()
                    server.close()
                    return
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        self.shut()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while time.monotonic() < self.ends:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
