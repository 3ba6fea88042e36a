"""Validation of resources with fhir.resources: R4 -> R4B models, R5 -> R5 models."""

from __future__ import annotations

from typing import Any

from fhir.resources import get_fhir_model_class as r5_model_class
from fhir.resources.R4B import get_fhir_model_class as r4b_model_class

from mappings.context import FhirVersion
from mappings.errors import InvalidInput, InvalidResource, UnsupportedVersion


def _model_class(resource_type: str, version: FhirVersion) -> Any:
    if version == FhirVersion.R4:
        return r4b_model_class(resource_type)
    if version == FhirVersion.R5:
        return r5_model_class(resource_type)
    raise UnsupportedVersion(f"FHIR version {version!r} is not supported")


def check(resource: dict[str, Any], version: FhirVersion) -> str | None:
    """The validation error text for a resource, or None when it is valid."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return "resourceType missing"
    try:
        model = _model_class(resource_type, version)
    except (KeyError, ValueError):
        return f"unknown resourceType {resource_type!r}"
    try:
        model.model_validate(resource)
    except ValueError as err:  # pydantic.ValidationError is a ValueError
        return str(err)
    return None


def validate_resource(resource: dict[str, Any], version: FhirVersion) -> None:
    """Raise InvalidResource (a bug of ours) unless a resource we built is valid."""
    error = check(resource, version)
    if error is not None:
        raise InvalidResource(f"{resource.get('resourceType')} ({version}) is invalid: {error}")


def validate_input(resource: dict[str, Any], version: FhirVersion) -> None:
    """Raise InvalidInput unless a resource given to us is valid."""
    error = check(resource, version)
    if error is not None:
        raise InvalidInput(f"{resource.get('resourceType')} ({version}) is invalid: {error}")
