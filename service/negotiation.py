"""Which FHIR version and Bundle type a caller asked for, from the query or the Accept header."""

from __future__ import annotations

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_options_header

from mappings.context import FhirVersion

VERSIONS = {
    "4.0": FhirVersion.R4,
    "4.0.1": FhirVersion.R4,
    "5.0": FhirVersion.R5,
    "5.0.0": FhirVersion.R5,
    "R4": FhirVersion.R4,
    "R5": FhirVersion.R5,
}
BUNDLE_TYPES = ("collection", "transaction")


class NegotiationError(ValueError):
    """The caller asked for a version or bundle type we do not serve; names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def fhir_version(query_value: str | None, accept: MIMEAccept) -> FhirVersion:
    """?fhirVersion= wins; else the fhirVersion parameter of application/fhir+json; else R4."""
    if query_value is not None:
        if query_value not in VERSIONS:
            raise NegotiationError("fhirVersion", "must be 4.0 or 5.0")
        return VERSIONS[query_value]
    for value, _quality in accept:
        mimetype, options = parse_options_header(value)
        # Werkzeug lower-cases parameter names, so "fhirVersion" arrives as "fhirversion".
        wanted = {k.lower(): v for k, v in options.items()}.get("fhirversion")
        if mimetype == "application/fhir+json" and wanted is not None:
            if wanted not in VERSIONS:
                raise NegotiationError("Accept", "fhirVersion must be 4.0 or 5.0")
            return VERSIONS[wanted]
    return FhirVersion.R4


def bundle_type(query_value: str | None) -> str:
    """?bundle=collection (default) or transaction."""
    if query_value is None:
        return "collection"
    if query_value not in BUNDLE_TYPES:
        raise NegotiationError("bundle", "must be collection or transaction")
    return query_value
