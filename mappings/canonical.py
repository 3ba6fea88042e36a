"""The canonical base of our local CodeSystems: a deployment setting, default today's value.

Codings and meta.tags of our local codes are built under DEFAULT_CANONICAL_BASE (the systems
in codes/local.yaml) and moved to the deployment's base as resources leave the mappings;
resources read back are moved to the default first, so resources written under either base
(the default, or the configured one) read back alike.

Only CodeSystem urls move. Identifier systems (<default>/sid/<app>) and extension urls stay
under the default whatever the setting: resource ids are uuid5 of the identifier, and the
ledger and conditional writes are keyed on it, so moving them would orphan (duplicate) every
resource already on a server; they are namespaces nobody resolves, so moving them buys
nothing. The default names no domain anyone resolves either: it is a name, and the
definitions are served (GET /CodeSystem/{id}) and published (diarybridge publish-terminology).
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_CANONICAL_BASE = "https://diarybridge.dev/fhir"
_CODESYSTEM = "/CodeSystem/"
_VALID = re.compile(
    r"^(https?://[^\s/?#]+(/[^\s?#]*[^\s?#/])?|urn:[a-z0-9][a-z0-9-]*:[^\s]+[^\s/])$"
)

_configured = DEFAULT_CANONICAL_BASE


def check_base(base: str) -> str:
    """The base if it is an http(s) URL or a URN without a trailing slash, else ValueError."""
    if not _VALID.match(base):
        raise ValueError("the canonical base must be an http(s) URL or urn: without a trailing /")
    return base


def configure(base: str) -> None:
    """Set the deployment's canonical base (once, from the settings, at start)."""
    global _configured  # a deployment setting, loaded once like the code tables
    _configured = check_base(base)


def configured() -> str:
    """The deployment's canonical base."""
    return _configured


def codesystem_url(url: str, base: str) -> str:
    """A local CodeSystem url (under the default base) under another base."""
    prefix = DEFAULT_CANONICAL_BASE + _CODESYSTEM
    return base + _CODESYSTEM + url[len(prefix) :] if url.startswith(prefix) else url


def _move(value: Any, old: str, new: str) -> Any:
    if isinstance(value, list):
        return [_move(v, old, new) for v in value]
    if not isinstance(value, dict):
        return value
    moved = {k: _move(v, old, new) for k, v in value.items()}
    system = moved.get("system")
    if isinstance(system, str) and system.startswith(old):
        moved["system"] = new + system[len(old) :]
    return moved


def to_base(resource: dict[str, Any], base: str) -> dict[str, Any]:
    """The resource with every local coding system moved from the default base to base."""
    if base == DEFAULT_CANONICAL_BASE:
        return resource
    moved: dict[str, Any] = _move(
        resource, DEFAULT_CANONICAL_BASE + _CODESYSTEM, base + _CODESYSTEM
    )
    return moved


def to_default(resource: dict[str, Any], base: str | None = None) -> dict[str, Any]:
    """The resource with local coding systems under base (the configured one) moved back."""
    base = _configured if base is None else base
    if base == DEFAULT_CANONICAL_BASE:
        return resource
    moved: dict[str, Any] = _move(
        resource, base + _CODESYSTEM, DEFAULT_CANONICAL_BASE + _CODESYSTEM
    )
    return moved
