"""Literal references made relative to the server's base URL: one form to compare and map back.

Servers may answer absolute references (`http://host/fhir/Patient/x`: Firely; SEKMET with
absolute_references; SEKMET's transaction `response.location` always). FHIR reads an absolute
reference under the server's own base as the relative one, so we rewrite those to `Type/id`.
A reference under another base is not ours: it stays as it is, and `foreign_references` finds it
so the use case can count it instead of following it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

_RELATIVE = re.compile(
    r"^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_DEFAULT_PORTS = {"http": 80, "https": 443}
Json = TypeVar("Json")


def _origin_and_path(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is no number: matches no base
        port = -1
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def is_absolute(reference: str) -> bool:
    """True for a reference that is a URL (`scheme://...`), not `Type/id`, `#x` or `urn:uuid:`."""
    return bool(_ABSOLUTE.match(reference))


def local_reference(reference: str, base_url: str) -> str | None:
    """`reference` as `Type/id[/_history/vid]` when it lies under `base_url` (scheme and host
    compared case-insensitively, default ports ignored); None when it is a URL under another
    base. Relative, contained (`#x`) and `urn:` references come back unchanged."""
    if not is_absolute(reference):
        return reference
    scheme, host, port, path = _origin_and_path(reference.split("?", 1)[0].split("#", 1)[0])
    base_scheme, base_host, base_port, base_path = _origin_and_path(base_url)
    if (scheme, host, port) != (base_scheme, base_host, base_port):
        return None
    if not path.startswith(base_path + "/"):
        return None
    rest = path[len(base_path) + 1 :]
    return rest if _RELATIVE.match(rest) else None


def normalise_references(node: Json, base_url: str) -> Json:
    """A copy of a resource (or any JSON value) with every `reference` under `base_url` made
    relative; references under another base are kept as they are (see foreign_references)."""
    return cast(Json, _normalise(node, base_url))


def _normalise(node: Any, base_url: str) -> Any:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                local = local_reference(value, base_url)
                out[key] = value if local is None else local
            else:
                out[key] = _normalise(value, base_url)
        return out
    if isinstance(node, list):
        return [_normalise(value, base_url) for value in node]
    return node


def foreign_references(node: Any) -> list[str]:
    """The references of a normalised resource that are still URLs: another server's, not ours."""
    found: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                if is_absolute(value):
                    found.append(value)
            else:
                found.extend(foreign_references(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(foreign_references(value))
    return found


_PARTS = re.compile(
    r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)


def relative_reference(reference: str, base_url: str) -> str | None:
    """`Type/id` (no version) of a literal reference to `base_url`, relative or absolute; None
    for anything else: another server's resource, a contained (`#x`) or logical (`urn:`)
    reference, an absolute one with a query or fragment, or no literal reference at all.

    Stricter than local_reference: exports decide whose a resource is with it, so whatever is
    not plainly a resource of this server counts as not the job's patient.
    """
    if not isinstance(reference, str) or (
        is_absolute(reference) and ("?" in reference or "#" in reference)
    ):
        return None
    match = _PARTS.match(local_reference(reference, base_url) or "")
    return f"{match.group(1)}/{match.group(2)}" if match else None


def is_foreign_reference(reference: str, base_url: str) -> bool:
    """True for an absolute URL that does not lie under `base_url` (another server's resource)."""
    return (
        isinstance(reference, str)
        and is_absolute(reference)
        and relative_reference(reference, base_url) is None
    )
