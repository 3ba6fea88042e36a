"""openapi.yaml and the app's routes name the same paths and methods."""

from __future__ import annotations

import re

from flask import Flask

from tests.api.contract import openapi

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _spec_operations() -> set[tuple[str, str]]:
    paths = openapi().spec / "paths"
    return {
        (str(path), method.upper())
        for path, item in paths.items()
        for method in item.keys()  # noqa: SIM118 - a SchemaPath iterates its parts, not keys
        if method in {"get", "post", "put", "delete", "patch"}
    }


def test_every_route_is_in_the_spec_and_every_spec_path_is_served(app: Flask) -> None:
    served = {
        (re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in IGNORED_METHODS
    }
    assert served == _spec_operations()
