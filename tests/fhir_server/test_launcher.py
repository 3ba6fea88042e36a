"""The launcher decides correctly when `npm ci` must run (without running it)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.fhir_server import launcher


@pytest.fixture
def stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / ".diarybridge-lock.sha256"
    monkeypatch.setattr(launcher, "INSTALL_STAMP", path)
    return path


def test_missing_stamp_means_install(stamp: Path) -> None:
    assert not launcher.npm_dependencies_current()


def test_stamp_of_another_lock_file_means_install(stamp: Path) -> None:
    stamp.write_text(hashlib.sha256(b"an older package-lock.json").hexdigest() + "\n")
    assert not launcher.npm_dependencies_current()


def test_stamp_of_this_lock_file_means_current(stamp: Path) -> None:
    stamp.write_text(hashlib.sha256(launcher.LOCK_FILE.read_bytes()).hexdigest() + "\n")
    assert launcher.npm_dependencies_current()


def test_node_flags_match_the_installed_node() -> None:
    command = launcher.node_command()
    version = subprocess.run([command[0], "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    # Only Node < 22 lacks a global WebSocket, which Medplum's core needs at import.
    expected = ["--experimental-websocket"] if major < 22 else []
    assert command[1:] == expected
