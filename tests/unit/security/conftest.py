"""Fixtures: keys generated at test time, a JWKS file built from them, a token factory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from security_keys import AUDIENCE, ISSUER, SigningKey, ec_key, jwks_of, rsa_key

from service.security import Authenticator, SecuritySettings


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    """Trusted keys by name, plus an untrusted RSA key reusing the trusted kid."""
    return {
        "rs256": rsa_key("rsa-1", "RS256", declare_alg=True),
        "rs384": rsa_key("rsa-384", "RS384", declare_alg=True),
        "es256": ec_key("ec-256", "ES256", ec.SECP256R1()),
        "es384": ec_key("ec-384", "ES384", ec.SECP384R1()),
        "intruder": rsa_key("rsa-1", "RS256", declare_alg=True),
        "rotated": rsa_key("rsa-2", "RS256", declare_alg=False),
    }


@pytest.fixture
def jwks_file(tmp_path: Path, keys: dict[str, SigningKey]) -> Path:
    """A JWKS file with the four trusted keys."""
    path = tmp_path / "jwks.json"
    trusted = [keys[name] for name in ("rs256", "rs384", "es256", "es384")]
    path.write_text(json.dumps(jwks_of(*trusted)), encoding="utf-8")
    return path


@pytest.fixture
def settings(jwks_file: Path) -> SecuritySettings:
    """Settings trusting the JWKS file, with the default algorithms and 30 s leeway."""
    return SecuritySettings(jwks_file=jwks_file, issuer=ISSUER, audience=(AUDIENCE,))


@pytest.fixture
def authenticator(settings: SecuritySettings) -> Authenticator:
    """An authenticator over the JWKS file."""
    return Authenticator(settings)


MakeToken = Callable[..., str]


@pytest.fixture
def make_token(keys: dict[str, SigningKey]) -> MakeToken:
    """Sign a token with sensible claims; keyword arguments override or (None) drop claims."""

    def make(key: str = "rs256", headers: dict[str, Any] | None = None, **claims: Any) -> str:
        signing_key = keys[key]
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "client_id": "diary-app",
            "scope": "openid launch/patient patient/Observation.rs patient/Observation.cud",
            "patient": "123",
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(
            payload,
            signing_key.private,
            algorithm=signing_key.algorithm,
            headers={"kid": signing_key.kid, **(headers or {})},
        )

    return make
