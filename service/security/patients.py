"""One normal form for "which patient" so token claims, API keys and data compare equal."""

from __future__ import annotations

import re

# A FHIR id (R4/R5 `id` datatype).
_ID = r"[A-Za-z0-9\-.]{1,64}"
_BARE_ID = re.compile(rf"({_ID})")
_RELATIVE = re.compile(rf"Patient/({_ID})(?:/_history/{_ID})?")


def patient_key(
    reference: str | None = None,
    identifier_system: str | None = None,
    identifier_value: str | None = None,
) -> str:
    """Return "Patient/<id>" for a reference or bare id, or "<system>|<value>" for an identifier.

    Exactly one form must be given. Absolute URLs and other resource types raise ValueError,
    so two spellings of different patients can never compare equal.
    """
    has_identifier = identifier_system is not None or identifier_value is not None
    if (reference is None) == (not has_identifier):
        raise ValueError("give either a patient reference or an identifier system and value")
    if reference is not None:
        text = reference.strip()
        for pattern in (_BARE_ID, _RELATIVE):
            match = pattern.fullmatch(text)
            if match:
                return f"Patient/{match.group(1)}"
        raise ValueError("patient reference must be 'Patient/<id>' or a bare FHIR id")
    system = (identifier_system or "").strip()
    value = (identifier_value or "").strip()
    if not system or not value:
        raise ValueError("a patient identifier needs both a system and a value")
    if "|" in system:
        raise ValueError("a patient identifier system cannot contain '|'")
    return f"{system}|{value}"


def parse_patient_key(text: str) -> str:
    """Normalise a key written as "Patient/123", "123" or "system|value" (as in configuration)."""
    if "|" in text:
        system, _, value = text.partition("|")
        return patient_key(identifier_system=system, identifier_value=value)
    return patient_key(reference=text)
