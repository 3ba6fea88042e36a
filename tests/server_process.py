"""What the two test FHIR server launchers share: an install lock, the readiness probe and the
life of one server process (wait until ready, stop, kill, the log's tail for error messages)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

STOP_TIMEOUT_S = 10.0


@contextlib.contextmanager
def install_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on path: one test process installs, the others wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def metadata_ok(base_url: str) -> bool:
    """True when base_url/metadata answers a CapabilityStatement."""
    try:
        with urllib.request.urlopen(f"{base_url}/metadata", timeout=2) as response:
            body = json.load(response)
    except (OSError, ValueError):
        return False
    return bool(body.get("resourceType") == "CapabilityStatement")


class ServerProcess:
    """Mixin for a launcher's dataclass with `process`, `log_path` and `base_url`."""

    process: subprocess.Popen[bytes] | None
    log_path: Path
    base_url: str

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(
        self,
        timeout: float,
        error: type[Exception],
        name: str,
        before_probe: Callable[[], bool] = lambda: True,
    ) -> None:
        """Poll /metadata until it answers; raise error (with the log's tail) on exit or timeout.

        before_probe runs first on each round; probing waits while it returns False (the
        Medplum launcher learns its port from the log that way).
        """
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise error(
                    f"{name} exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            if before_probe() and metadata_ok(self.base_url):
                return
            time.sleep(0.05)
        self.kill()
        raise error(f"{name} not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop gracefully with SIGTERM (SIGKILL after timeout)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Stop at once with SIGKILL."""
        self._signal(signal.SIGKILL, STOP_TIMEOUT_S)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def _signal(self, signum: signal.Signals, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
