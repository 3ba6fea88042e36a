"""Install and run the test FHIR server (Medplum's router, see server.mjs) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.server_process import ServerProcess, install_lock

SERVER_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = SERVER_DIR / "server.mjs"
LOCK_FILE = SERVER_DIR / "package-lock.json"
NODE_MODULES = SERVER_DIR / "node_modules"
# Written after a successful `npm ci`; holds the hash of the lock file it installed.
INSTALL_STAMP = NODE_MODULES / ".diarybridge-lock.sha256"
MIN_NODE_MAJOR = 20
# Node 22+ has a global WebSocket; on 20 Medplum's core needs this flag to load.
WEBSOCKET_FLAG_BELOW_MAJOR = 22
NPM_TIMEOUT_S = 600.0
STARTUP_TIMEOUT_S = 60.0
READY_LINE = re.compile(r"FHIR server ready http://127\.0\.0\.1:(\d+)")


class FhirServerError(RuntimeError):
    """The test FHIR server could not be installed or started."""


def _lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def npm_dependencies_current() -> bool:
    """True when node_modules holds exactly what package-lock.json pins."""
    if not INSTALL_STAMP.is_file():
        return False
    return INSTALL_STAMP.read_text().strip() == _lock_digest()


def _install_lock_path() -> Path:
    # Outside the work tree so nothing shows up in git; keyed by folder so clones don't collide.
    key = hashlib.sha256(str(SERVER_DIR).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"diarybridge-fhir-npm-{key}.lock"


def ensure_npm_dependencies() -> bool:
    """Run `npm ci` when node_modules is missing or stale; True if it installed."""
    if npm_dependencies_current():
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise FhirServerError("npm is not on PATH: the test FHIR server needs Node.js 20+ and npm")
    with install_lock(_install_lock_path()):
        if npm_dependencies_current():
            return False
        command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        try:
            done = subprocess.run(
                command,
                cwd=SERVER_DIR,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise FhirServerError(f"npm ci took longer than {NPM_TIMEOUT_S:.0f} s") from exc
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-2000:]
            raise FhirServerError(f"npm ci failed with exit code {done.returncode}:\n{tail}")
        INSTALL_STAMP.write_text(_lock_digest() + "\n")
    return True


def node_command() -> list[str]:
    """The node executable and flags that load Medplum on this machine's Node.js."""
    node = shutil.which("node")
    if node is None:
        raise FhirServerError("node is not on PATH: the test FHIR server needs Node.js 20+")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < MIN_NODE_MAJOR:
        raise FhirServerError(f"Node.js {version} is too old: the test FHIR server needs 20+")
    flags = ["--experimental-websocket"] if major < WEBSOCKET_FLAG_BELOW_MAJOR else []
    return [node, *flags]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServer(ServerProcess):
    """One server process; stop, kill and restart keep its port and its journal file."""

    port: int  # 0 until the first start() has learnt the port the server chose
    data_dir: Path
    persist: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """The FHIR base URL, e.g. http://127.0.0.1:8123."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def journal_path(self) -> Path | None:
        """Where committed writes are appended, or None for a memory-only server."""
        return self.data_dir / "journal.jsonl" if self.persist else None

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.data_dir / "server.log"

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Start the process and wait until /metadata answers; raise FhirServerError if not."""
        if self.is_running():
            raise FhirServerError(f"server on port {self.port} is already running")
        command = [*node_command(), str(SERVER_SCRIPT), "--port", str(self.port)]
        if self.journal_path is not None:
            command += ["--data-file", str(self.journal_path)]
        command.append("--exit-with-parent")
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=SERVER_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for pytest must not hit the server first
            )
        self.wait_ready(
            timeout, FhirServerError, "FHIR server", lambda: self._port_known(log_offset)
        )

    def restart(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Stop (if running) and start again on the same port with the same data."""
        self.stop()
        self.start(timeout)

    def reset(self) -> None:
        """Delete every resource (and the journal) through the server's POST /$reset."""
        request = urllib.request.Request(f"{self.base_url}/$reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _port_known(self, log_offset: int) -> bool:
        if self.port == 0:
            # Port 0 lets the server bind a free port itself: no race with other processes.
            self.port = self._ready_port(log_offset)
        return self.port != 0

    def _ready_port(self, log_offset: int) -> int:
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            match = READY_LINE.search(log.read().decode(errors="replace"))
        return int(match.group(1)) if match else 0


def start_fhir_server(
    port: int | None = None,
    *,
    data_dir: Path | None = None,
    persist: bool = True,
    timeout: float = STARTUP_TIMEOUT_S,
) -> RunningServer:
    """Install npm deps if needed, start the server on 127.0.0.1 and wait for /metadata."""
    ensure_npm_dependencies()
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="diarybridge-fhir-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    server = RunningServer(port=port or 0, data_dir=data_dir, persist=persist)
    server.start(timeout)
    return server
