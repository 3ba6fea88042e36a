"""Test-time signing keys and JWKS documents for the security tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://auth.example.test/realms/diary"
AUDIENCE = "https://diarybridge.example.test/api"


@dataclass(frozen=True)
class SigningKey:
    """A private key with the kid and algorithm it signs with, and its public JWK."""

    kid: str
    algorithm: str
    private: Any
    jwk: dict[str, Any]


def rsa_key(kid: str, algorithm: str, declare_alg: bool) -> SigningKey:
    """A fresh 2048-bit RSA key; its JWK declares `alg` only if asked."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, use="sig")
    if declare_alg:
        jwk["alg"] = algorithm
    return SigningKey(kid, algorithm, private, jwk)


def ec_key(kid: str, algorithm: str, curve: ec.EllipticCurve) -> SigningKey:
    """A fresh EC key on `curve`."""
    private = ec.generate_private_key(curve)
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid)  # no "alg": PyJWT infers ES256/ES384 from the curve
    return SigningKey(kid, algorithm, private, jwk)


def jwks_of(*signing_keys: SigningKey) -> dict[str, Any]:
    """A JWKS document publishing the public halves of `signing_keys`."""
    return {"keys": [key.jwk for key in signing_keys]}
