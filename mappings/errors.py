"""The mapping layer's own exceptions; the service turns them into HTTP answers in one place."""

from __future__ import annotations


class MappingError(Exception):
    """Base of every error raised by mappings/."""


class UnknownCode(MappingError):
    """A code table has no entry for a key we asked for (names file and key)."""


class CodeTableError(MappingError):
    """A code data file is malformed (names file and key)."""


class UnsupportedVersion(MappingError):
    """A FHIR version we do not speak."""


class NotOurResource(MappingError):
    """A resource that carries none of our business identifiers, or of a kind we do not map back."""


class InvalidResource(MappingError):
    """A resource we built failed FHIR validation: a bug in a mapping, never sent on the wire."""


class InvalidInput(MappingError):
    """A FHIR resource given to us to map back is structurally invalid (names the path)."""


class InvalidRecordJson(MappingError):
    """Stored JSON of a record that does not read back as one (names the kind, not the data)."""
