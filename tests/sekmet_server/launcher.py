"""Install and run the second test FHIR server, SEKMET (PyPI sekmet-fhir), on 127.0.0.1.

SEKMET lives in a venv of its own under a cache dir, not in the project's test extra: its
fhirpathpy pins python-dateutil~=2.8, which would downgrade the 4.x our matplotlib runs on in
production, and Faker would load its pytest plugin into our suite. The venv is installed from
requirements.lock (every version pinned) under a file lock, like `npm ci` for the Medplum server.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.server_process import ServerProcess, install_lock

SERVER_DIR = Path(__file__).resolve().parent
REQUIREMENTS = SERVER_DIR / "requirements.lock"
STAMP_NAME = ".diarybridge-requirements.sha256"
PIP_TIMEOUT_S = 600.0
STARTUP_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SekmetServerError(RuntimeError):
    """The SEKMET test server could not be installed or started."""


def _requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def cache_dir() -> Path:
    """DIARYBRIDGE_CACHE_DIR, else $XDG_CACHE_HOME/diarybridge, else ~/.cache/diarybridge."""
    explicit = os.environ.get("DIARYBRIDGE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "diarybridge"


def venv_dir() -> Path:
    """The venv for this requirements.lock and this Python (minor version)."""
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_dir() / f"sekmet-fhir-{_requirements_digest()[:12]}-{py}"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def sekmet_installed() -> bool:
    """True when the venv holds exactly what requirements.lock pins."""
    stamp = venv_dir() / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == _requirements_digest()


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise SekmetServerError(f"{what} took longer than {PIP_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise SekmetServerError(f"{what} failed with exit code {done.returncode}:\n{tail}")


def ensure_sekmet_installed() -> bool:
    """Create the venv and pip install requirements.lock when needed; True if it installed."""
    if sekmet_installed():
        return False
    with install_lock(cache_dir() / "sekmet-fhir.lock"):
        if sekmet_installed():  # another test process installed it while we waited
            return False
        target = venv_dir()
        shutil.rmtree(target, ignore_errors=True)  # a half-made venv from an interrupted install
        _run([sys.executable, "-m", "venv", str(target)], "python -m venv")
        pip = [
            str(venv_python()),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-compile",
        ]
        try:
            _run([*pip, "-r", str(REQUIREMENTS)], "pip install sekmet-fhir")
        except SekmetServerError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / STAMP_NAME).write_text(_requirements_digest() + "\n")
    return True


def settings_yaml(base_url: str, data_dir: Path, *, absolute_references: bool) -> str:
    """SEKMET's settings (sekmet/config.py): no auth, no simulator, everything under data_dir.

    JSON is valid YAML, so json.dumps writes it without a YAML library.
    """
    settings = {
        "base_url": base_url,
        "host": "127.0.0.1",
        "data_dir": str(data_dir),
        "db_path": str(data_dir / "sekmet.db"),
        "own_private_key_path": str(data_dir / "keys" / "sekmet_private.pem"),
        "server_auth": {"types": ["none"]},
        # The simulator answers ServiceRequest/Task/MedicationRequest/... with writes of its own.
        "simulator": {"enabled": False},
        "log_inbound": False,  # the traffic log would store every request body in the DB
        "server_behaviour": {"absolute_references": absolute_references},
    }
    return json.dumps(settings, indent=2) + "\n"


def _exit_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies, even by SIGKILL."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class SekmetServer(ServerProcess):
    """One `uvicorn sekmet.main:app_factory` process with its own SQLite DB in data_dir."""

    data_dir: Path
    absolute_references: bool = False
    port: int = 0  # known once start() has bound the socket
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """The FHIR base URL, e.g. http://127.0.0.1:8123/fhir (SEKMET serves under /fhir)."""
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def settings_path(self) -> Path:
        return self.data_dir / "settings.yaml"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.data_dir / "server.log"

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Start on a free port and wait until /fhir/metadata answers; SekmetServerError if not."""
        if self.is_running():
            raise SekmetServerError(f"server on port {self.port} is already running")
        # We bind the socket and hand it to uvicorn (--fd): the port is ours before SEKMET needs
        # it in base_url (links, absolute references), and no other process can take it meanwhile.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self.settings_path.write_text(
            settings_yaml(
                self.base_url, self.data_dir, absolute_references=self.absolute_references
            )
        )
        command = [
            str(venv_python()),
            "-m",
            "uvicorn",
            "sekmet.main:app_factory",
            "--factory",
            "--fd",
            str(listener.fileno()),
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "SEKMET_CONFIG": str(self.settings_path)}
        for name in ("SEKMET_BASE_URL", "SEKMET_DB", "SEKMET_PUBLIC_URL", "SEKMET_PORT"):
            env.pop(name, None)  # they would override the settings file
        try:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    cwd=self.data_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=[listener.fileno()],
                    start_new_session=True,  # a Ctrl-C meant for pytest must not hit it first
                    preexec_fn=_exit_with_parent,
                )
        finally:
            listener.close()
        self.wait_ready(timeout, SekmetServerError, "SEKMET")


def start_sekmet_server(
    *,
    absolute_references: bool = False,
    data_dir: Path | None = None,
    timeout: float = STARTUP_TIMEOUT_S,
) -> SekmetServer:
    """Install SEKMET if needed, start it on 127.0.0.1 with a new DB, wait for /fhir/metadata."""
    ensure_sekmet_installed()
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="diarybridge-sekmet-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    server = SekmetServer(data_dir=data_dir, absolute_references=absolute_references)
    server.start(timeout)
    return server
