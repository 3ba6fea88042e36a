"""gunicorn settings and hooks for one instance: the Dockerfile loads this module
(`--config python:service.gunicorn_config`) and `diarybridge serve` applies the same values.

Before the first worker starts, the master makes what its workers must share:
- a private run directory (mkdtemp), holding gunicorn's control socket, so two instances on one
  machine never meet at the default `~/.gunicorn/gunicorn.ctl` (each unlinks the other's socket);
- prometheus_client's multiprocess directory inside it, so any worker's /metrics sums all workers;
- one page-token key for all workers when none is configured, so next links work on any worker;
- with more than one web worker, the delivery worker as its own process (`diarybridge worker`,
  restarted if it dies) instead of a thread in every web worker: requests then share neither
  their process nor SQLite's write lock with a worker's batch in each of them.
The workers inherit these through the environment; the run directory goes when the master exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import Any

from service.config import METRICS_DIR_VAR, PAGE_TOKEN_KEY_VAR, Settings, worker_environment

_settings = Settings.from_env()
_run_dir = ""
_metrics_dir = _settings.metrics_multiproc_dir
_delivery: subprocess.Popen[bytes] | None = None
_stopping = threading.Event()
RESTART_PAUSE_SECONDS = 5.0  # before a dead delivery worker is started again

# gunicorn reads these module-level names as its settings; command-line flags override them.
bind = f"{_settings.host}:{_settings.port}"
workers = _settings.web_workers
threads = _settings.web_threads
accesslog = None  # the app logs one JSON access line per request


def on_starting(server: Any) -> None:
    """gunicorn hook, in the master before any worker: the instance's run dir and shared state."""
    global _run_dir, _metrics_dir
    _run_dir = tempfile.mkdtemp(prefix="diarybridge-run-")
    control = server.cfg.settings["control_socket"]
    if control.value == control.default:  # an operator's explicit --control-socket wins
        server.cfg.set("control_socket", os.path.join(_run_dir, "gunicorn.ctl"))
    handed_down = worker_environment(_settings, _run_dir)
    if PAGE_TOKEN_KEY_VAR in handed_down:
        server.log.warning(
            "DIARYBRIDGE_PAGE_TOKEN_KEY is not set: generated one for this instance's workers; "
            "next-page links stop working when it restarts and on other instances"
        )
    if METRICS_DIR_VAR in handed_down:
        _metrics_dir = handed_down[METRICS_DIR_VAR]
    os.makedirs(_metrics_dir, exist_ok=True)  # an operator's directory may not exist yet
    # Set before any worker imports prometheus_client: it picks its value store at import.
    os.environ.update(handed_down)
    if _settings.worker_in_process and _settings.fhir.base_url and server.cfg.workers > 1:
        # One delivery process for the instance, not one thread per web worker.
        os.environ["DIARYBRIDGE_WORKER_IN_PROCESS"] = "0"
        _start_delivery_worker(server)  # here, before any fork, not from the thread below
        threading.Thread(
            target=_keep_delivery_worker, args=(server,), name="diarybridge-delivery", daemon=True
        ).start()


def _start_delivery_worker(server: Any) -> None:
    global _delivery
    command = [sys.executable, "-m", "service.cli", "worker", "--parent-pid", str(os.getpid())]
    _delivery = subprocess.Popen(command)
    server.log.info("delivery worker started (pid %s)", _delivery.pid)


def _keep_delivery_worker(server: Any) -> None:
    """Start the delivery worker again if it dies, until the master exits.

    It only polls: the master forks web workers meanwhile, and a lock held by this thread at
    that moment would stay locked in the child.
    """
    while not _stopping.wait(RESTART_PAUSE_SECONDS):
        if _delivery is not None and _delivery.poll() is not None:
            server.log.warning(
                "delivery worker exited with %s; starting it again", _delivery.returncode
            )
            _start_delivery_worker(server)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master when a worker exits: drop its live-gauge files."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """gunicorn hook, in the master at shutdown: remove the run directory we made."""
    _stopping.set()
    if _delivery is not None and _delivery.poll() is None:
        _delivery.terminate()  # it finishes its batch; what it did not record is re-sent
        try:
            _delivery.wait(15)
        except subprocess.TimeoutExpired:
            _delivery.kill()
    if _run_dir:
        shutil.rmtree(_run_dir, ignore_errors=True)
