"""Outbound auth: static bearer, basic, and SMART Backend Services (private_key_jwt)."""

from __future__ import annotations

import base64
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir_fakes import BASE, observation

from service.fhir_client import (
    AuthConfig,
    AuthenticationError,
    BasicAuth,
    BearerTokenAuth,
    FhirClient,
    FhirClientConfig,
    RetryPolicy,
    SmartBackendAuth,
    Unauthorized,
    build_auth,
    build_client,
)
from service.fhir_client.auth import JWT_BEARER

TOKEN_URL = "https://auth.clinic.test/oauth/token"
OBS_URL = f"{BASE}/Observation/obs-1"


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def token_form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def smart(key: Any, clock: Clock, alg: str = "RS384", **kwargs: Any) -> SmartBackendAuth:
    kwargs.setdefault("token_url", TOKEN_URL)
    return SmartBackendAuth(
        client_id="diarybridge-test",
        private_key_pem=pem(key),
        key_id="key-2026",
        alg=alg,  # type: ignore[arg-type]
        scope="system/Observation.cruds",
        clock=clock,
        **kwargs,
    )


def test_bearer_header(rsps: responses.RequestsMock) -> None:
    rsps.get(OBS_URL, json=observation())
    with FhirClient(BASE, auth=BearerTokenAuth("static-token-123")) as fhir:
        fhir.read("Observation", "obs-1")
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer static-token-123"
    assert "static-token-123" not in repr(BearerTokenAuth("static-token-123"))


def test_basic_header(rsps: responses.RequestsMock) -> None:
    rsps.get(OBS_URL, json=observation())
    with FhirClient(BASE, auth=BasicAuth("sync-user", "s3cret")) as fhir:
        fhir.read("Observation", "obs-1")
    expected = base64.b64encode(b"sync-user:s3cret").decode()
    assert rsps.calls[0].request.headers["Authorization"] == f"Basic {expected}"
    assert "s3cret" not in repr(BasicAuth("sync-user", "s3cret"))


@pytest.mark.parametrize(("alg", "key_fixture"), [("RS384", "rsa_key"), ("ES384", "ec_key")])
def test_smart_token_request_and_assertion(
    rsps: responses.RequestsMock, request: pytest.FixtureRequest, alg: str, key_fixture: str
) -> None:
    key = request.getfixturevalue(key_fixture)
    clock = Clock()
    rsps.post(TOKEN_URL, json={"access_token": "tok-1", "token_type": "bearer", "expires_in": 300})
    rsps.get(OBS_URL, json=observation())

    with FhirClient(BASE, auth=smart(key, clock, alg)) as fhir:
        fhir.read("Observation", "obs-1")

    form = token_form(rsps.calls[0])
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/Observation.cruds"
    assert form["client_assertion_type"] == JWT_BEARER
    assertion = form["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    assert (header["alg"], header["kid"], header["typ"]) == (alg, "key-2026", "JWT")
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=[alg],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "diarybridge-test"
    assert claims["aud"] == TOKEN_URL
    assert len(claims["jti"]) >= 16
    assert 0 < claims["exp"] - clock.now <= 300
    assert rsps.calls[1].request.headers["Authorization"] == "Bearer tok-1"


def test_smart_token_is_cached_until_shortly_before_expiry(
    rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    clock = Clock()
    rsps.post(TOKEN_URL, json={"access_token": "tok-1", "expires_in": 300})
    rsps.post(TOKEN_URL, json={"access_token": "tok-2", "expires_in": 300})
    auth = smart(rsa_key, clock)

    assert auth.access_token() == "tok-1"
    clock.now += 200
    assert auth.access_token() == "tok-1"
    assert len(rsps.calls) == 1
    clock.now += 50  # 250 s: inside the 60 s refresh margin
    assert auth.access_token() == "tok-2"
    jtis = {
        jwt.decode(token_form(c)["client_assertion"], options={"verify_signature": False})["jti"]
        for c in rsps.calls
    }
    assert len(jtis) == 2  # a fresh jti per assertion


def test_401_triggers_one_refresh_and_one_retry(
    rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    rsps.post(TOKEN_URL, json={"access_token": "tok-old", "expires_in": 3600})
    rsps.post(TOKEN_URL, json={"access_token": "tok-new", "expires_in": 3600})
    rsps.post(f"{BASE}/Observation", status=HTTPStatus.UNAUTHORIZED)
    rsps.post(
        f"{BASE}/Observation", status=HTTPStatus.CREATED, headers={"Location": "Observation/n1"}
    )

    with FhirClient(BASE, auth=smart(rsa_key, Clock()), retry=RetryPolicy(max_attempts=1)) as fhir:
        result = fhir.create(observation(None))  # not idempotent, yet a 401 resend is safe

    assert result.id == "n1"
    sent = [
        c.request.headers.get("Authorization") for c in rsps.calls if c.request.url != TOKEN_URL
    ]
    assert sent == ["Bearer tok-old", "Bearer tok-new"]


def test_second_401_is_raised(rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey) -> None:
    rsps.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 3600})
    rsps.get(OBS_URL, status=HTTPStatus.UNAUTHORIZED)

    with pytest.raises(Unauthorized), FhirClient(BASE, auth=smart(rsa_key, Clock())) as fhir:
        fhir.read("Observation", "obs-1")

    token_calls = [c for c in rsps.calls if c.request.url == TOKEN_URL]
    fhir_calls = [c for c in rsps.calls if c.request.url == OBS_URL]
    assert (len(token_calls), len(fhir_calls)) == (2, 2)


def test_token_url_discovered_from_smart_configuration(
    rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    rsps.get(f"{BASE}/.well-known/smart-configuration", json={"token_endpoint": TOKEN_URL})
    rsps.post(TOKEN_URL, json={"access_token": "tok", "expires_in": 300})
    auth = smart(rsa_key, Clock(), token_url=None, fhir_base_url=BASE)

    assert auth.access_token() == "tok"
    assertion = token_form(rsps.calls[1])["client_assertion"]
    assert jwt.decode(assertion, options={"verify_signature": False})["aud"] == TOKEN_URL


def test_token_endpoint_error_is_authentication_error(
    rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.post(
        TOKEN_URL,
        status=HTTPStatus.UNAUTHORIZED,
        json={"error": "invalid_client", "error_description": "unknown kid"},
    )

    with pytest.raises(AuthenticationError, match="invalid_client"):
        smart(rsa_key, Clock()).access_token()


def test_key_must_fit_the_algorithm(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(AuthenticationError, match="ES384"):
        smart(rsa_key, Clock(), alg="ES384")
    with pytest.raises(AuthenticationError, match="PEM"):
        SmartBackendAuth(client_id="c", private_key_pem="nope", key_id="k", token_url=TOKEN_URL)


def test_secrets_never_logged(
    rsps: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.post(TOKEN_URL, json={"access_token": "tok-secret-xyz", "expires_in": 300})
    rsps.get(OBS_URL, json=observation())
    auth = smart(rsa_key, Clock())
    caplog.set_level(logging.DEBUG)

    with FhirClient(BASE, auth=auth) as fhir:
        fhir.read("Observation", "obs-1")

    assert "tok-secret-xyz" not in caplog.text
    assert "PRIVATE KEY" not in caplog.text
    assert "PRIVATE KEY" not in repr(auth)


def test_build_client_from_config(rsps: responses.RequestsMock) -> None:
    config = FhirClientConfig(
        base_url=BASE,
        auth=AuthConfig(kind="basic", username="u", password="p-secret"),
        connect_timeout=2.0,
        read_timeout=9.0,
    )
    assert "p-secret" not in repr(config)
    rsps.get(OBS_URL, json=observation())

    with build_client(config) as fhir:
        fhir.read("Observation", "obs-1")

    call = rsps.calls[0]
    assert call.request.req_kwargs["timeout"] == (2.0, 9.0)
    assert call.request.req_kwargs["verify"] is True
    assert call.request.headers["Authorization"].startswith("Basic ")


def test_build_auth_smart_and_missing_settings(rsa_key: rsa.RSAPrivateKey) -> None:
    auth = build_auth(
        AuthConfig(kind="smart-backend", client_id="c", private_key_pem=pem(rsa_key), key_id="k"),
        fhir_base_url=BASE,
    )
    assert isinstance(auth, SmartBackendAuth)
    assert build_auth(AuthConfig(), fhir_base_url=BASE) is None
    with pytest.raises(ValueError, match="token"):
        build_auth(AuthConfig(kind="bearer"), fhir_base_url=BASE)
