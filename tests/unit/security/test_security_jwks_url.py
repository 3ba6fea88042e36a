"""Signing keys fetched from a JWKS URL served by a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from security_keys import AUDIENCE, ISSUER, jwks_of

from service.security import Authenticator, KeysUnavailable, SecuritySettings, Unauthenticated
from service.security.jwks import JwksUrl


class JwksServer:
    """A tiny issuer: serves `document` at /jwks.json and counts the requests."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = HTTPStatus.OK
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"


@pytest.fixture
def issuer(keys) -> Iterator[JwksServer]:
    server = JwksServer()
    server.document = jwks_of(keys["rs256"], keys["es256"])
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def authenticator_for(url: str) -> Authenticator:
    settings = SecuritySettings(jwks_url=url, issuer=ISSUER, audience=(AUDIENCE,))
    return Authenticator(settings)


def test_token_verified_with_keys_from_the_url(issuer, make_token):
    auth = authenticator_for(issuer.url)
    assert auth.authenticate(f"Bearer {make_token('rs256')}", None).patient == "Patient/123"
    assert auth.authenticate(f"Bearer {make_token('es256')}", None).client_id == "diary-app"
    assert issuer.requests == 1  # the set is cached between requests


def test_rotated_key_is_fetched_on_first_sight(issuer, keys, make_token):
    auth = authenticator_for(issuer.url)
    auth.authenticate(f"Bearer {make_token('rs256')}", None)

    issuer.document = jwks_of(keys["rs256"], keys["rotated"])
    assert auth.authenticate(f"Bearer {make_token('rotated')}", None).client_id == "diary-app"
    assert issuer.requests == 2


def test_unknown_kids_refetch_at_most_once_per_cooldown(issuer, make_token):
    auth = authenticator_for(issuer.url)
    for attempt in range(5):
        with pytest.raises(Unauthenticated, match="unknown key"):
            auth.authenticate(f"Bearer {make_token(headers={'kid': f'made-up-{attempt}'})}", None)
    assert issuer.requests == 2  # the first fetch and one forced refresh


def test_no_refresh_inside_the_cooldown(issuer, keys, make_token):
    keys_source = JwksUrl(issuer.url, cache_seconds=300, timeout_seconds=2)
    with pytest.raises(Unauthenticated):
        keys_source.signing_key("made-up")
    issuer.document = jwks_of(keys["rotated"])
    # Still cooling down: the new key is not seen until the cache or cooldown expires.
    with pytest.raises(Unauthenticated):
        keys_source.signing_key("rsa-2")
    assert issuer.requests == 2


def test_refresh_allowed_again_after_the_cooldown(issuer, keys):
    keys_source = JwksUrl(
        issuer.url, cache_seconds=300, timeout_seconds=2, refresh_cooldown_seconds=0
    )
    with pytest.raises(Unauthenticated):
        keys_source.signing_key("rsa-2")
    issuer.document = jwks_of(keys["rotated"])
    assert keys_source.signing_key("rsa-2").key_id == "rsa-2"


def test_issuer_error_means_keys_unavailable(issuer, make_token):
    issuer.status = HTTPStatus.INTERNAL_SERVER_ERROR
    with pytest.raises(KeysUnavailable):
        authenticator_for(issuer.url).authenticate(f"Bearer {make_token()}", None)


def test_issuer_down_means_keys_unavailable(make_token):
    server = JwksServer()
    url = server.url
    server.httpd.server_close()  # nothing listens on the port any more
    with pytest.raises(KeysUnavailable):
        authenticator_for(url).authenticate(f"Bearer {make_token()}", None)


def test_issuer_serving_no_keys_means_keys_unavailable(issuer, make_token):
    issuer.document = {"keys": []}
    with pytest.raises(KeysUnavailable):
        authenticator_for(issuer.url).authenticate(f"Bearer {make_token()}", None)


def test_bad_token_is_refused_without_contacting_the_issuer(issuer):
    with pytest.raises(Unauthenticated, match="malformed"):
        authenticator_for(issuer.url).authenticate("Bearer not-a-jwt", None)
    assert issuer.requests == 0
