"""Where token signing keys come from: a JWKS file (re-read when it changes) or a JWKS URL."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Protocol

import jwt

from service.security.errors import KeysUnavailable, SecurityConfigError, Unauthenticated

log = logging.getLogger(__name__)

UNKNOWN_KEY = "token signed with an unknown key"
REFRESH_COOLDOWN_SECONDS = 30.0


class SigningKeys(Protocol):
    """A source of signing keys looked up by `kid`."""

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """Return the key for `kid`; Unauthenticated if unknown, KeysUnavailable if unreadable."""
        ...


def _find(keys: jwt.PyJWKSet, kid: str) -> jwt.PyJWK | None:
    for key in keys:
        # Keys published for encryption must not verify signatures.
        if key.key_id == kid and key.public_key_use in ("sig", None):
            return key
    return None


class JwksFile:
    """Signing keys from a local JWKS file; a rotated file is picked up on the next request."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        try:
            self._stamp = self._stat()
            self._keys = self._load()
        except (OSError, ValueError, jwt.PyJWTError) as error:
            raise SecurityConfigError(f"JWKS file {path} is unusable: {error}") from None

    def _stat(self) -> tuple[int, int]:
        info = os.stat(self._path)
        return info.st_mtime_ns, info.st_size

    def _load(self) -> jwt.PyJWKSet:
        document = json.loads(self._path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            raise ValueError("a JWKS must be a JSON object")
        return jwt.PyJWKSet.from_dict(document)

    def _current(self) -> jwt.PyJWKSet:
        with self._lock:
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self._keys, self._stamp = self._load(), stamp
                    log.info("reloaded JWKS file with %d keys", len(self._keys.keys))
            except (OSError, ValueError, jwt.PyJWTError) as error:
                # Keep the last good keys: a half-written file must not lock everyone out.
                log.warning("JWKS file unreadable, keeping previous keys: %s", type(error).__name__)
            return self._keys

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """Return the file's key for `kid`."""
        key = _find(self._current(), kid)
        if key is None:
            raise Unauthenticated(UNKNOWN_KEY)
        return key


class JwksUrl:
    """Signing keys from a JWKS URL through PyJWT's client, cached for `cache_seconds`."""

    def __init__(
        self,
        url: str,
        cache_seconds: float,
        timeout_seconds: float,
        refresh_cooldown_seconds: float = REFRESH_COOLDOWN_SECONDS,
    ) -> None:
        try:
            self._client = jwt.PyJWKClient(
                url, cache_jwk_set=True, lifespan=cache_seconds, timeout=timeout_seconds
            )
        except jwt.PyJWKClientError as error:
            raise SecurityConfigError(f"JWKS URL is unusable: {error}") from None
        self._cooldown = refresh_cooldown_seconds
        self._last_refresh = -math.inf
        self._lock = threading.Lock()

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """Return the key for `kid`, refetching the set early (rate-limited) for a new kid."""
        try:
            key = _find(self._client.get_jwk_set(), kid)
            if key is None and self._refresh_allowed():
                # The issuer may have rotated its keys since we cached the set.
                key = _find(self._client.get_jwk_set(refresh=True), kid)
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as error:
            log.warning("JWKS URL unavailable: %s", type(error).__name__)
            raise KeysUnavailable("signing keys are unavailable") from None
        if key is None:
            raise Unauthenticated(UNKNOWN_KEY)
        return key

    def _refresh_allowed(self) -> bool:
        # Tokens with made-up kids must not turn into a flood of requests to the issuer.
        with self._lock:
            now = time.monotonic()
            if now - self._last_refresh < self._cooldown:
                return False
            self._last_refresh = now
            return True
