"""Errors of the security layer; api/errors.py turns them into HTTP responses."""

from __future__ import annotations

import re

REALM = "diarybridge"

# RFC 6750 section 3: error_description and scope may only use these characters.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quoted(text: str) -> str:
    return '"' + _UNSAFE.sub("?", text) + '"'


def bearer_challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """Build a `WWW-Authenticate` Bearer challenge (RFC 6750) for the diarybridge realm."""
    parts = [f"realm={_quoted(REALM)}"]
    if error:
        parts.append(f"error={_quoted(error)}")
    if description:
        parts.append(f"error_description={_quoted(description)}")
    if scope:
        parts.append(f"scope={_quoted(scope)}")
    return "Bearer " + ", ".join(parts)


class SecurityError(Exception):
    """Base class of every error raised by service.security."""


class SecurityConfigError(SecurityError, ValueError):
    """The security settings are malformed; the message names the setting, never a secret."""


class KeysUnavailable(SecurityError):
    """The signing keys (JWKS) could not be loaded, so no token can be checked: HTTP 503."""


class Unauthenticated(SecurityError):
    """Missing or invalid credentials: HTTP 401 with `www_authenticate` as the header value.

    `reason` is a fixed text that is safe to show; it never echoes the credential.
    `error` is the RFC 6750 code: None when no credentials were sent at all.
    """

    def __init__(self, reason: str, error: str | None = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.www_authenticate = bearer_challenge(error, reason if error else None)


class Forbidden(SecurityError):
    """Valid credentials whose scopes or patient binding do not allow the request: HTTP 403.

    `needed_scope` lists the scope(s), space-separated, that would allow the request.
    """

    def __init__(self, reason: str, needed_scope: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needed_scope = needed_scope
        self.www_authenticate = bearer_challenge("insufficient_scope", reason, needed_scope)
