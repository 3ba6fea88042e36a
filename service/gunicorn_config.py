"""gunicorn settings and hooks for one instance: the Dockerfile loads this module
(`--config python:service.gunicorn_config`) and `diarybridge serve` applies the same values.

Before the first worker starts, the master makes what its workers must share:
- a private run directory (mkdtemp), holding gunicorn's control socket, so two instances on one
  machine never meet at the default `~/.gunicorn/gunicorn.ctl` (each unlinks the other's socket);
- prometheus_client's multiprocess directory inside it, so any worker's /metrics sums all workers;
- one page-token key for all workers when none is configured, so next links work on any worker.
The workers inherit these through the environment; the run directory goes when the master exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from service.config import METRICS_DIR_VAR, PAGE_TOKEN_KEY_VAR, Settings, worker_environment

_settings = Settings.from_env()
_run_dir = ""
_metrics_dir = _settings.metrics_multiproc_dir

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


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master when a worker exits: drop its live-gauge files."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """gunicorn hook, in the master at shutdown: remove the run directory we made."""
    if _run_dir:
        shutil.rmtree(_run_dir, ignore_errors=True)
