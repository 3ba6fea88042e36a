"""Inbound authentication and authorisation, independent of Flask.

The app builds one `Authenticator(SecuritySettings.from_mapping(env))`, calls
`authenticate(authorization_header, api_key_header)` before each request, and views call
`principal.require(action, resource_type, patient_key(...))`.
"""

from service.security.authenticator import Authenticator
from service.security.errors import (
    Forbidden,
    KeysUnavailable,
    SecurityConfigError,
    SecurityError,
    Unauthenticated,
    bearer_challenge,
)
from service.security.patients import parse_patient_key, patient_key
from service.security.principal import Principal
from service.security.scopes import Scope, parse_scope, parse_scopes
from service.security.settings import ApiKeyGrant, SecuritySettings, hash_api_key

__all__ = [
    "ApiKeyGrant",
    "Authenticator",
    "Forbidden",
    "KeysUnavailable",
    "Principal",
    "Scope",
    "SecurityConfigError",
    "SecurityError",
    "SecuritySettings",
    "Unauthenticated",
    "bearer_challenge",
    "hash_api_key",
    "parse_patient_key",
    "parse_scope",
    "parse_scopes",
    "patient_key",
]
