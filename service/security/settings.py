"""Security settings: JWKS/issuer/audience for bearer tokens and the API-key table.

`SecuritySettings.from_mapping(env)` reads (all optional; blank means unset):

    DIARYBRIDGE_JWKS_URL             https URL of the issuer's JWKS (http only on loopback)
    DIARYBRIDGE_JWKS_FILE            path of a JWKS file instead (re-read when it changes)
    DIARYBRIDGE_JWT_ISSUER           expected `iss`; required with a JWKS
    DIARYBRIDGE_JWT_AUDIENCE         expected `aud`, comma-separated if several; required too
    DIARYBRIDGE_JWT_ALGORITHMS       comma-separated, default RS256,RS384,ES256,ES384 (no HS*/none)
    DIARYBRIDGE_JWT_LEEWAY_SECONDS   clock skew allowed on exp/nbf/iat, default 30, at most 300
    DIARYBRIDGE_JWKS_CACHE_SECONDS   how long a fetched JWKS is reused, default 300
    DIARYBRIDGE_JWKS_TIMEOUT_SECONDS timeout of a JWKS fetch, default 5
    DIARYBRIDGE_API_KEYS             JSON list, one object per key:
        {"key_sha256": "<64 hex>" | "key": "<plain, >= 16 chars, dev only>",
         "client_id": "...", "scopes": "system/*.read ..." or [...],
         "patient": "Patient/123" | "123" | "system|value"  (optional)}

Without a JWKS no bearer token is accepted; without API keys no key is; with neither every
request is Unauthenticated.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

from service.security.errors import SecurityConfigError
from service.security.patients import parse_patient_key
from service.security.scopes import Scope, parse_scopes

# Asymmetric algorithms only: "none" and HS* (which would accept the public key as a
# shared secret) can never be configured.
SAFE_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
DEFAULT_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
MIN_PLAIN_KEY_LENGTH = 16
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

ENV_JWKS_URL = "DIARYBRIDGE_JWKS_URL"
ENV_JWKS_FILE = "DIARYBRIDGE_JWKS_FILE"
ENV_ISSUER = "DIARYBRIDGE_JWT_ISSUER"
ENV_AUDIENCE = "DIARYBRIDGE_JWT_AUDIENCE"
ENV_ALGORITHMS = "DIARYBRIDGE_JWT_ALGORITHMS"
ENV_LEEWAY = "DIARYBRIDGE_JWT_LEEWAY_SECONDS"
ENV_JWKS_CACHE = "DIARYBRIDGE_JWKS_CACHE_SECONDS"
ENV_JWKS_TIMEOUT = "DIARYBRIDGE_JWKS_TIMEOUT_SECONDS"
ENV_API_KEYS = "DIARYBRIDGE_API_KEYS"


def hash_api_key(key: str) -> str:
    """Return the lowercase hex sha256 of an API key, the form settings store and compare."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ApiKeyGrant:
    """What one API key may do: the client it stands for, its scopes, an optional patient."""

    client_id: str
    scopes: frozenset[Scope]
    patient: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id.strip():
            raise SecurityConfigError("an API key needs a client_id")
        if self.patient is not None:
            object.__setattr__(self, "patient", parse_patient_key(self.patient))


@dataclass(frozen=True)
class SecuritySettings:
    """How callers authenticate. `api_keys` maps the sha256 hex of a key to its grant."""

    jwks_url: str | None = None
    jwks_file: Path | None = None
    issuer: str | None = None
    audience: tuple[str, ...] = ()
    api_keys: Mapping[str, ApiKeyGrant] = field(default_factory=dict)
    leeway_seconds: float = 30.0
    jwks_cache_seconds: float = 300.0
    jwks_timeout_seconds: float = 5.0
    allowed_algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", MappingProxyType(dict(self.api_keys)))
        if self.jwks_url and self.jwks_file:
            raise SecurityConfigError(f"set {ENV_JWKS_URL} or {ENV_JWKS_FILE}, not both")
        if self.jwks_url:
            _check_jwks_url(self.jwks_url)
        if self.accepts_tokens and (not self.issuer or not self.audience):
            raise SecurityConfigError(
                f"bearer tokens need {ENV_ISSUER} and {ENV_AUDIENCE} as well as the JWKS"
            )
        unsafe = set(self.allowed_algorithms) - SAFE_ALGORITHMS
        if unsafe or not self.allowed_algorithms:
            raise SecurityConfigError(
                f"{ENV_ALGORITHMS} must be a non-empty subset of {sorted(SAFE_ALGORITHMS)}"
            )
        if not 0 <= self.leeway_seconds <= 300:
            raise SecurityConfigError(f"{ENV_LEEWAY} must be between 0 and 300 seconds")
        if self.jwks_cache_seconds <= 0 or self.jwks_timeout_seconds <= 0:
            raise SecurityConfigError(f"{ENV_JWKS_CACHE} and {ENV_JWKS_TIMEOUT} must be > 0")
        for digest in self.api_keys:
            if not _SHA256_HEX.fullmatch(digest):
                raise SecurityConfigError("api_keys must be keyed by lowercase sha256 hex")

    @property
    def accepts_tokens(self) -> bool:
        """Whether bearer tokens can be verified (a JWKS URL or file is configured)."""
        return bool(self.jwks_url or self.jwks_file)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> SecuritySettings:
        """Build settings from environment-like strings (see the ENV_* names in this module)."""
        return cls(
            jwks_url=env.get(ENV_JWKS_URL) or None,
            jwks_file=Path(env[ENV_JWKS_FILE]) if env.get(ENV_JWKS_FILE) else None,
            issuer=env.get(ENV_ISSUER) or None,
            audience=_split(env.get(ENV_AUDIENCE, "")),
            api_keys=_api_keys(env.get(ENV_API_KEYS, "")),
            leeway_seconds=_number(env, ENV_LEEWAY, 30.0),
            jwks_cache_seconds=_number(env, ENV_JWKS_CACHE, 300.0),
            jwks_timeout_seconds=_number(env, ENV_JWKS_TIMEOUT, 5.0),
            allowed_algorithms=_split(env.get(ENV_ALGORITHMS, "")) or DEFAULT_ALGORITHMS,
        )


def _check_jwks_url(url: str) -> None:
    parsed = urlparse(url)
    # Keys fetched over plain HTTP could be swapped in transit; allow it only on loopback.
    if parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname in _LOOPBACK):
        return
    raise SecurityConfigError(f"{ENV_JWKS_URL} must be an https URL")


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SecurityConfigError(f"{name} must be a number") from None


def _api_keys(raw: str) -> dict[str, ApiKeyGrant]:
    if not raw.strip():
        return {}
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        raise SecurityConfigError(f"{ENV_API_KEYS} is not valid JSON") from None
    if not isinstance(entries, list):
        raise SecurityConfigError(f"{ENV_API_KEYS} must be a JSON list of objects")
    grants: dict[str, ApiKeyGrant] = {}
    for index, entry in enumerate(entries):
        where = f"{ENV_API_KEYS}[{index}]"
        digest, grant = _api_key_entry(entry, where)
        if digest in grants:
            raise SecurityConfigError(f"{where}: the same key is configured twice")
        grants[digest] = grant
    return grants


_ENTRY_FIELDS = {"key", "key_sha256", "client_id", "scopes", "patient"}


def _api_key_entry(entry: Any, where: str) -> tuple[str, ApiKeyGrant]:
    # Messages name the entry and field, never the key itself.
    if not isinstance(entry, dict):
        raise SecurityConfigError(f"{where} must be an object")
    unknown = set(entry) - _ENTRY_FIELDS
    if unknown:
        raise SecurityConfigError(f"{where}: unknown fields {sorted(unknown)}")
    if ("key" in entry) == ("key_sha256" in entry):
        raise SecurityConfigError(f"{where}: give exactly one of 'key' or 'key_sha256'")
    if "key" in entry:
        key = entry["key"]
        if not isinstance(key, str) or len(key) < MIN_PLAIN_KEY_LENGTH:
            raise SecurityConfigError(
                f"{where}: 'key' must be a string of at least {MIN_PLAIN_KEY_LENGTH} characters"
            )
        digest = hash_api_key(key)
    else:
        digest = entry["key_sha256"]
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
            raise SecurityConfigError(f"{where}: 'key_sha256' must be 64 hex characters")
        digest = digest.lower()
    client_id = entry.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        raise SecurityConfigError(f"{where}: 'client_id' must be a non-empty string")
    raw_scopes = entry.get("scopes")
    if not isinstance(raw_scopes, str | list) or not all(
        isinstance(s, str) for s in (raw_scopes if isinstance(raw_scopes, list) else [])
    ):
        raise SecurityConfigError(f"{where}: 'scopes' must be a string or a list of strings")
    try:
        scopes = parse_scopes(raw_scopes, strict=True)
    except ValueError as error:
        raise SecurityConfigError(f"{where}: {error}") from None
    if not scopes:
        raise SecurityConfigError(f"{where}: 'scopes' is empty")
    patient = entry.get("patient")
    if patient is not None and not isinstance(patient, str):
        raise SecurityConfigError(f"{where}: 'patient' must be a string")
    try:
        return digest, ApiKeyGrant(client_id.strip(), scopes, patient)
    except ValueError as error:
        raise SecurityConfigError(f"{where}: 'patient' {error}") from None
