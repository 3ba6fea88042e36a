"""Authenticator: which credential is used, API keys, and the 401 challenges."""

from __future__ import annotations

import json

import pytest

from service.security import Authenticator, SecuritySettings, Unauthenticated, hash_api_key

PLAIN_KEY = "dev-key-0123456789abcdef"
HASHED_KEY = "batch-key-fedcba9876543210"
MRN = "https://clinic.example.test/mrn"


@pytest.fixture
def with_keys(jwks_file) -> Authenticator:
    entries = [
        {"key": PLAIN_KEY, "client_id": "dev-tool", "scopes": "user/*.read"},
        {
            "key_sha256": hash_api_key(HASHED_KEY),
            "client_id": "kiosk",
            "scopes": "patient/Observation.rs patient/Observation.cud",
            "patient": f"{MRN}|000123",
        },
    ]
    env = {
        "DIARYBRIDGE_JWKS_FILE": str(jwks_file),
        "DIARYBRIDGE_JWT_ISSUER": "https://auth.example.test/realms/diary",
        "DIARYBRIDGE_JWT_AUDIENCE": "https://diarybridge.example.test/api",
        "DIARYBRIDGE_API_KEYS": json.dumps(entries),
    }
    return Authenticator(SecuritySettings.from_mapping(env))


def refused(auth: Authenticator, authorization: str | None, api_key: str | None):
    with pytest.raises(Unauthenticated) as caught:
        auth.authenticate(authorization, api_key)
    return caught.value


def test_plain_configured_key_authenticates(with_keys):
    principal = with_keys.authenticate(None, PLAIN_KEY)
    assert principal.client_id == "dev-tool"
    assert principal.credential == "api_key"
    assert principal.patient is None
    assert principal.can("read", "Observation", "Patient/1")
    assert not principal.can("write", "Observation", "Patient/1")


def test_hashed_configured_key_authenticates_bound_to_its_patient(with_keys):
    kiosk = with_keys.authenticate(None, f"  {HASHED_KEY} ")
    assert kiosk.client_id == "kiosk"
    assert kiosk.can("write", "Observation", f"{MRN}|000123")
    assert not kiosk.can("write", "Observation", f"{MRN}|000124")


@pytest.mark.parametrize("key", [PLAIN_KEY[:-1], PLAIN_KEY.upper(), hash_api_key(PLAIN_KEY)])
def test_wrong_api_key_is_refused(with_keys, key):
    # The configured hash itself is not a key: only its preimage is.
    error = refused(with_keys, None, key)
    assert error.reason == "API key is not valid"
    assert error.error == "invalid_token"
    assert key not in error.www_authenticate


def test_api_key_when_none_are_configured(authenticator):
    assert refused(authenticator, None, PLAIN_KEY).reason == "API keys are not accepted"


def test_bearer_token_when_no_jwks_is_configured(make_token):
    only_keys = Authenticator(SecuritySettings())
    assert refused(only_keys, f"Bearer {make_token()}", None).reason == (
        "bearer tokens are not accepted"
    )


@pytest.mark.parametrize(("authorization", "api_key"), [(None, None), ("", ""), ("  ", None)])
def test_no_credentials_gives_a_bare_challenge(with_keys, authorization, api_key):
    error = refused(with_keys, authorization, api_key)
    assert error.reason == "credentials are required"
    assert error.error is None
    # RFC 6750 3.1: no error code when the request carried no credentials.
    assert error.www_authenticate == 'Bearer realm="diarybridge"'


@pytest.mark.parametrize(
    "authorization", ["Basic ZGV2OmtleQ==", "Bearer", "Bearer   ", "Token abc", "abc"]
)
def test_other_schemes_are_invalid_requests(with_keys, authorization):
    error = refused(with_keys, authorization, None)
    assert error.reason == "use the Bearer authorization scheme"
    assert error.www_authenticate == (
        'Bearer realm="diarybridge", error="invalid_request", '
        'error_description="use the Bearer authorization scheme"'
    )


def test_two_credentials_at_once_are_refused(with_keys, make_token):
    error = refused(with_keys, f"Bearer {make_token()}", PLAIN_KEY)
    assert error.reason == "send one credential, not both"
    assert error.error == "invalid_request"


def test_token_and_key_each_work_alone(with_keys, make_token):
    assert with_keys.authenticate(f"Bearer {make_token()}", None).credential == "jwt"
    assert with_keys.authenticate(None, PLAIN_KEY).credential == "api_key"


def test_challenge_text_cannot_be_broken_by_quotes():
    error = Unauthenticated('bad "quoted" \\ text')
    assert error.www_authenticate == (
        'Bearer realm="diarybridge", error="invalid_token", error_description="bad ?quoted? ? text"'
    )
