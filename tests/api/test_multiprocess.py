"""Several processes serve one instance: they sign page tokens with one configured key, and the
settings that size and join them are checked. The real gunicorn run is tests/integration."""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path

import pytest
from flask import Flask

import service.app
from service import wiring
from service.api.errors import TABLE
from service.app import create_app
from service.config import ConfigError, Settings, default_workers, worker_environment
from service.sync.search import BadPageToken, page_token, page_url
from tests.conftest import make_env

NEXT = "http://127.0.0.1:8103/fhir/R4/Observation?_getpages=abc&_getpagesoffset=5"
KEY = "a-shared-page-token-key-0123456789"


def _app(tmp_path: Path, name: str, **extra: str) -> Flask:
    (tmp_path / name).mkdir()
    return create_app(Settings.from_env(make_env(tmp_path / name, **extra)))


def test_processes_sharing_a_configured_key_accept_each_others_page_tokens(
    tmp_path: Path,
) -> None:
    one = _app(tmp_path, "one", DIARYBRIDGE_PAGE_TOKEN_KEY=KEY)
    two = _app(tmp_path, "two", DIARYBRIDGE_PAGE_TOKEN_KEY=KEY)
    other = _app(tmp_path, "other", DIARYBRIDGE_PAGE_TOKEN_KEY=KEY + "-other")
    token = page_token(wiring.of(one).page_key, NEXT)
    assert page_url(wiring.of(two).page_key, token) == (NEXT, False)
    with pytest.raises(BadPageToken) as refused:
        page_url(wiring.of(other).page_key, token)
    statuses = {exc_type: status for exc_type, status, *_ in TABLE}
    assert statuses[type(refused.value)] == HTTPStatus.BAD_REQUEST


def test_without_a_key_each_process_signs_alone_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.app, "_warned_random_page_key", False)
    caplog.set_level(logging.WARNING, logger="service.app")
    one, two = _app(tmp_path, "one"), _app(tmp_path, "two")
    token = page_token(wiring.of(one).page_key, NEXT)
    with pytest.raises(BadPageToken):
        page_url(wiring.of(two).page_key, token)
    warnings = [r for r in caplog.records if "DIARYBRIDGE_PAGE_TOKEN_KEY" in r.getMessage()]
    assert len(warnings) == 1  # once per process, however many apps it builds


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIARYBRIDGE_PAGE_TOKEN_KEY", "short-secret"),
        ("DIARYBRIDGE_WORKERS", "0"),
        ("DIARYBRIDGE_THREADS", "-1"),
        ("DIARYBRIDGE_WORKERS", "two"),
    ],
)
def test_bad_instance_settings_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env({name: value})
    if name == "DIARYBRIDGE_PAGE_TOKEN_KEY":
        assert value not in str(refused.value)  # a secret is never echoed


def test_workers_and_threads_come_from_settings_or_the_cores() -> None:
    assert 1 <= default_workers() <= 4
    assert Settings.from_env({}).web_workers == default_workers()
    sized = Settings.from_env({"DIARYBRIDGE_WORKERS": "3", "DIARYBRIDGE_THREADS": "8"})
    assert (sized.web_workers, sized.web_threads) == (3, 8)


def test_a_master_hands_its_workers_one_key_and_a_metrics_dir_unless_configured(
    tmp_path: Path,
) -> None:
    handed = worker_environment(Settings.from_env({}), str(tmp_path))
    assert handed["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "metrics")
    assert len(handed["DIARYBRIDGE_PAGE_TOKEN_KEY"]) >= 32
    workers_settings = Settings.from_env(handed)  # what each worker then reads
    assert workers_settings.page_token_key == handed["DIARYBRIDGE_PAGE_TOKEN_KEY"]
    assert workers_settings.metrics_multiproc_dir == str(tmp_path / "metrics")
    configured = Settings.from_env(
        {"DIARYBRIDGE_PAGE_TOKEN_KEY": KEY, "PROMETHEUS_MULTIPROC_DIR": "/srv/metrics"}
    )
    assert worker_environment(configured, str(tmp_path)) == {}
