"""Literal references as a server writes them, made relative to its base URL.

    relative_reference("Patient/7", base)                          -> "Patient/7"
    relative_reference("http://host/fhir/Patient/7/_history/2", "http://host/fhir") -> "Patient/7"
    relative_reference("https://elsewhere/fhir/Patient/7", "http://host/fhir")     -> None

Servers answer either form (Medplum relative, Firely and SEKMET with `absolute_references`
absolute), so a reference is compared only after this. A reference to another base names a
resource on another server: None, never "the same id here". (Small and exports-only for now; the
w/refs branch writes the general helper, and the two are meant to be unified at merge.)
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# FHIR's own pattern for a relative literal reference: Type/id, optionally /_history/vid.
_RELATIVE = re.compile(
    r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def relative_reference(reference: str, base_url: str) -> str | None:
    """'Type/id' for a reference to `base_url` (relative or absolute); None for anything else.

    None means: another server's resource, a contained ('#x') or logical ('urn:') reference, or
    something that is no literal reference at all.
    """
    if not isinstance(reference, str) or not reference:
        return None
    if "://" not in reference:
        match = _RELATIVE.match(reference)
        return f"{match.group(1)}/{match.group(2)}" if match else None
    scheme, host, port, path = _origin_and_path(reference)
    b_scheme, b_host, b_port, b_path = _origin_and_path(base_url)
    if (scheme, host, port) != (b_scheme, b_host, b_port) or not host:
        return None
    if not path.startswith(b_path + "/"):
        return None
    if urlsplit(reference).query or urlsplit(reference).fragment:
        return None
    match = _RELATIVE.match(path[len(b_path) + 1 :])
    return f"{match.group(1)}/{match.group(2)}" if match else None


def is_foreign_reference(reference: str, base_url: str) -> bool:
    """True for an absolute URL that does not lie under `base_url` (another server's resource)."""
    return (
        isinstance(reference, str)
        and "://" in reference
        and relative_reference(reference, base_url) is None
    )
