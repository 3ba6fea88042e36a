"""Bearer tokens verified against a JWKS file: what is accepted and why the rest is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from security_keys import AUDIENCE, ISSUER, SigningKey, jwks_of

from service.security import (
    Authenticator,
    Scope,
    SecurityConfigError,
    SecuritySettings,
    Unauthenticated,
)


def refused(authenticator: Authenticator, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        authenticator.authenticate(f"Bearer {token}", None)
    return caught.value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_valid_token_gives_client_scopes_and_patient(authenticator, make_token):
    principal = authenticator.authenticate(f"Bearer {make_token()}", None)

    assert principal.client_id == "diary-app"
    assert principal.patient == "Patient/123"
    assert principal.credential == "jwt"
    # openid and launch/patient grant nothing; rs + cud together give read and write.
    assert principal.scopes == {
        Scope("patient", "Observation", read=True, write=False),
        Scope("patient", "Observation", read=False, write=True),
    }


@pytest.mark.parametrize("key", ["rs256", "rs384", "es256", "es384"])
def test_each_allowed_algorithm_verifies(authenticator, make_token, key):
    principal = authenticator.authenticate(f"Bearer {make_token(key)}", None)
    assert principal.client_id == "diary-app"


def test_scheme_is_case_insensitive(authenticator, make_token):
    assert authenticator.authenticate(f"bearer {make_token()}", None).client_id == "diary-app"


def test_expired_token_is_refused_with_challenge(authenticator, make_token):
    error = refused(authenticator, make_token(exp=int(time.time()) - 120))

    assert error.reason == "token has expired"
    assert error.www_authenticate == (
        'Bearer realm="diarybridge", error="invalid_token", error_description="token has expired"'
    )


def test_expiry_within_leeway_is_accepted(authenticator, make_token):
    token = make_token(exp=int(time.time()) - 10)  # leeway is 30 s
    assert authenticator.authenticate(f"Bearer {token}", None).client_id == "diary-app"


def test_token_not_yet_valid_is_refused(authenticator, make_token):
    error = refused(authenticator, make_token(nbf=int(time.time()) + 600))
    assert error.reason == "token is not valid yet"


def test_wrong_issuer_is_refused(authenticator, make_token):
    error = refused(authenticator, make_token(iss="https://evil.example.test"))
    assert error.reason == "token issuer is not trusted"


def test_wrong_audience_is_refused(authenticator, make_token):
    error = refused(authenticator, make_token(aud="https://other-service.example.test"))
    assert error.reason == "token is not meant for this service"


@pytest.mark.parametrize("claim", ["exp", "iss", "aud"])
def test_missing_required_claim_is_refused(authenticator, make_token, claim):
    error = refused(authenticator, make_token(**{claim: None}))
    assert error.reason == "token lacks a required claim"


def test_signature_by_another_key_with_trusted_kid_is_refused(authenticator, make_token):
    error = refused(authenticator, make_token("intruder"))
    assert error.reason == "token signature is invalid"


def test_tampered_payload_is_refused(authenticator, make_token):
    header, _, signature = make_token().split(".")
    payload = _b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "scope": "system/*.*"}).encode())
    error = refused(authenticator, f"{header}.{payload}.{signature}")
    assert error.reason == "token signature is invalid"


def test_alg_none_is_refused(authenticator, make_token):
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "client_id": "x"},
        None,
        algorithm="none",
        headers={"kid": "rsa-1"},
    )
    assert refused(authenticator, token).reason == "token algorithm is not allowed"


def test_hs256_signed_with_the_public_key_is_refused(authenticator, keys):
    # The classic confusion attack: the published public key used as an HMAC secret.
    public_pem = (
        keys["rs256"]
        .private.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "client_id": "x"}
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()

    error = refused(authenticator, f"{header}.{payload}.{_b64(mac)}")
    assert error.reason == "token algorithm is not allowed"


def test_hs256_with_any_secret_is_refused(authenticator):
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        "a-shared-secret-of-32-bytes-long!",
        algorithm="HS256",
        headers={"kid": "rsa-1"},
    )
    assert refused(authenticator, token).reason == "token algorithm is not allowed"


def test_algorithm_outside_the_configured_list_is_refused(jwks_file, make_token):
    only_es = SecuritySettings(
        jwks_file=jwks_file, issuer=ISSUER, audience=(AUDIENCE,), allowed_algorithms=("ES256",)
    )
    error = refused(Authenticator(only_es), make_token("rs256"))
    assert error.reason == "token algorithm is not allowed"


def test_token_alg_must_match_the_keys_alg(authenticator, make_token, keys):
    # Signed RS256 but names the RS384 key (whose JWK declares alg RS384).
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "client_id": "x"},
        keys["rs384"].private,
        algorithm="RS256",
        headers={"kid": "rsa-384"},
    )
    assert refused(authenticator, token).reason == "token algorithm does not match its key"


def test_rsa_token_naming_an_ec_key_is_refused(authenticator, make_token):
    token = make_token("rs256", headers={"kid": "ec-256"})
    assert refused(authenticator, token).reason == "token algorithm does not match its key"


def test_unknown_kid_is_refused(authenticator, make_token):
    error = refused(authenticator, make_token(headers={"kid": "no-such-key"}))
    assert error.reason == "token signed with an unknown key"
    assert "no-such-key" not in error.www_authenticate


def test_token_without_kid_is_refused(authenticator, keys):
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        keys["rs256"].private,
        algorithm="RS256",
    )
    assert refused(authenticator, token).reason == "token has no key id (kid)"


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "x" * 20_000])
def test_malformed_token_is_refused(authenticator, garbage):
    assert refused(authenticator, garbage).reason in {"token is malformed", "token is too long"}


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"client_id": None, "azp": "from-azp"}, "from-azp"),
        ({"client_id": None, "azp": None, "sub": "from-sub"}, "from-sub"),
        ({"client_id": "first", "azp": "second"}, "first"),
    ],
)
def test_client_id_comes_from_client_id_azp_or_sub(authenticator, make_token, claims, expected):
    principal = authenticator.authenticate(f"Bearer {make_token(**claims)}", None)
    assert principal.client_id == expected


def test_token_naming_no_client_is_refused(authenticator, make_token):
    error = refused(authenticator, make_token(client_id=None, sub=" "))
    assert error.reason == "token names no client (client_id, azp or sub)"


def test_scopes_may_come_as_a_scp_list(authenticator, make_token):
    token = make_token(scope=None, scp=["user/*.read", "fhirUser"], patient=None)
    principal = authenticator.authenticate(f"Bearer {token}", None)
    assert principal.scopes == {Scope("user", "*", read=True, write=False)}
    assert principal.patient is None


@pytest.mark.parametrize("patient", ["Group/1", "a b", 123, ""])
def test_invalid_patient_claim_is_refused(authenticator, make_token, patient):
    error = refused(authenticator, make_token(patient=patient))
    assert error.reason == "token has an invalid patient claim"


def test_rotated_jwks_file_is_picked_up(authenticator, jwks_file: Path, keys, make_token):
    assert (
        refused(authenticator, make_token("rotated")).reason == "token signed with an unknown key"
    )

    jwks_file.write_text(json.dumps(jwks_of(keys["rs256"], keys["rotated"])), encoding="utf-8")
    stamp = time.time_ns() + 1_000_000_000  # a distinct mtime even on coarse file systems
    os.utime(jwks_file, ns=(stamp, stamp))

    assert authenticator.authenticate(f"Bearer {make_token('rotated')}", None)
    # The dropped RS384 key no longer verifies anything.
    assert refused(authenticator, make_token("rs384")).reason == "token signed with an unknown key"


def test_broken_jwks_file_keeps_the_last_good_keys(authenticator, jwks_file: Path, make_token):
    jwks_file.write_text("{not json", encoding="utf-8")
    stamp = time.time_ns() + 1_000_000_000
    os.utime(jwks_file, ns=(stamp, stamp))

    assert authenticator.authenticate(f"Bearer {make_token()}", None).client_id == "diary-app"


def test_encryption_keys_do_not_verify_signatures(tmp_path, keys, make_token):
    jwk = dict(keys["rs256"].jwk, use="enc")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk, keys["es256"].jwk]}), encoding="utf-8")
    auth = Authenticator(SecuritySettings(jwks_file=path, issuer=ISSUER, audience=(AUDIENCE,)))

    assert refused(auth, make_token("rs256")).reason == "token signed with an unknown key"


@pytest.mark.parametrize("content", [None, "{}", '{"keys": []}', "[1, 2]"])
def test_unusable_jwks_file_fails_at_startup(tmp_path, content):
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SecurityConfigError, match="JWKS file"):
        Authenticator(SecuritySettings(jwks_file=path, issuer=ISSUER, audience=(AUDIENCE,)))


def test_any_of_several_audiences_is_accepted(jwks_file, make_token):
    settings = SecuritySettings(
        jwks_file=jwks_file, issuer=ISSUER, audience=("https://a.example.test", AUDIENCE)
    )
    assert Authenticator(settings).authenticate(f"Bearer {make_token()}", None)


def test_signing_key_type_is_used(keys: dict[str, SigningKey]):
    # Guards the fixture itself: the EC JWKs carry no alg, the RS384 one declares it.
    assert "alg" not in keys["es384"].jwk
    assert keys["rs384"].jwk["alg"] == "RS384"
