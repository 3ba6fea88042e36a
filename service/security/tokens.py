"""Bearer token (JWT) verification: signature, algorithm, issuer, audience and time."""

from __future__ import annotations

from typing import Any

import jwt

from service.security.errors import Unauthenticated
from service.security.jwks import SigningKeys
from service.security.patients import patient_key
from service.security.principal import Principal
from service.security.scopes import parse_scopes
from service.security.settings import SecuritySettings

REQUIRED_CLAIMS = ["exp", "iss", "aud"]

# Most specific first; the reason texts are fixed and never echo the token.
_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidAudienceError, "token is not meant for this service"),
    (jwt.InvalidIssuerError, "token issuer is not trusted"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidAlgorithmError, "token algorithm does not match its key"),
]


class TokenVerifier:
    """Turns a verified JWT into a Principal, or raises Unauthenticated."""

    def __init__(self, settings: SecuritySettings, keys: SigningKeys) -> None:
        self._settings = settings
        self._keys = keys

    def verify(self, token: str) -> Principal:
        """Verify `token` and return its principal."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("token is malformed") from None
        algorithm = header.get("alg")
        # Checked before any key is touched: "none" and HS* never get near a public key.
        if algorithm not in self._settings.allowed_algorithms:
            raise Unauthenticated("token algorithm is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token has no key id (kid)")
        key = self._keys.signing_key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=list(self._settings.audience),
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(_reason(error)) from None
        return principal_from_claims(claims)


def _reason(error: jwt.PyJWTError) -> str:
    for error_type, reason in _REASONS:
        if isinstance(error, error_type):
            return reason
    return "token is invalid"


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Build the principal from verified claims: client id, SMART scopes, patient context."""
    client_id = next(
        (
            claims[name]
            for name in ("client_id", "azp", "sub")
            if isinstance(claims.get(name), str) and claims[name].strip()
        ),
        None,
    )
    if client_id is None:
        raise Unauthenticated("token names no client (client_id, azp or sub)")
    raw_scopes = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw_scopes, list):
        raw_scopes = [s for s in raw_scopes if isinstance(s, str)]
    elif not isinstance(raw_scopes, str):
        raw_scopes = ""
    patient = claims.get("patient")
    if patient is not None:
        # SMART's launch context is a bare Patient id.
        try:
            patient = patient_key(reference=patient) if isinstance(patient, str) else None
        except ValueError:
            patient = None
        if patient is None:
            raise Unauthenticated("token has an invalid patient claim")
    return Principal(client_id, parse_scopes(raw_scopes), patient, credential="jwt")
