"""The reference for the HTTP rows of bench/run_all.py: a Flask app that reads the body and
answers a small JSON, served by gunicorn with DiaryBridge's own config (service.gunicorn_config),
so the difference to `diarybridge serve` is our request handling alone."""

from __future__ import annotations

from http import HTTPStatus

from flask import Flask, request

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> tuple[dict[str, str], HTTPStatus]:
    return {"status": "ok"}, HTTPStatus.OK


@app.post("/<path:anything>")
def echo_size(anything: str) -> tuple[dict[str, int], HTTPStatus]:
    """Read the whole body (as the real endpoints must) and answer its size."""
    return {"bytes": len(request.get_data())}, HTTPStatus.OK
