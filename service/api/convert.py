"""POST /convert/*: our JSON <-> FHIR without touching any server."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request

from mappings.context import FhirVersion
from service import convert, wiring
from service.api import audit
from service.api.bodies import FHIR_JSON, read_json, read_ndjson_lines
from service.api.context import mapping_context, require_records, require_resources_read
from service.negotiation import bundle_type, fhir_version
from service.schemas import RecordKind

bp = Blueprint("convert", __name__, url_prefix="/convert")

NDJSON_TYPES = ("application/fhir+ndjson", "application/x-ndjson", "application/ndjson")


def fhir_response(body: dict[str, Any], version: FhirVersion) -> Response:
    """A FHIR JSON answer whose media type names the version on the wire."""
    number = "5.0" if version is FhirVersion.R5 else "4.0"
    return Response(
        json.dumps(body),  # not Flask's: it sorts keys, and FHIR reads best resourceType first
        status=HTTPStatus.OK,
        # content_type, not mimetype + a header: Werkzeug 3.1.9 lets mimetype win over the header.
        content_type=f"{FHIR_JSON}; fhirVersion={number}",
    )


def _convert(kind: RecordKind) -> Response:
    payload = read_json()
    version = fhir_version(request.args.get("fhirVersion"), request.accept_mimetypes)
    wanted_bundle = bundle_type(request.args.get("bundle"))
    settings = wiring.current().settings
    records_payload = require_records(payload, kind)
    bundle = convert.records_to_bundle(
        records_payload,
        kind,
        mapping_context(version),
        wanted_bundle,
        settings.max_records_per_request,
    )
    audit.note_records("write", kind.value, payload if isinstance(payload, list) else [payload])
    return fhir_response(bundle, version)


@bp.post("/diary-entries")
def diary_entries() -> Response:
    """Diary entries -> Observations (and patient-reported MedicationAdministrations)."""
    return _convert(RecordKind.DIARY_ENTRY)


@bp.post("/infusions")
def infusions() -> Response:
    """Infusion records -> MedicationAdministrations and reaction Observations."""
    return _convert(RecordKind.INFUSION)


@bp.post("/fhir")
def from_fhir() -> tuple[dict[str, Any], HTTPStatus]:
    """A Bundle or NDJSON of our resources -> our diary entry / infusion JSON."""
    if request.mimetype in NDJSON_TYPES:
        resources = list(convert.resources_from_ndjson(read_ndjson_lines()))
    else:
        resources = convert.resources_from_bundle(read_json())
    answer = convert.resources_to_records(resources)
    require_resources_read(answer)
    audit.note_records("read", RecordKind.DIARY_ENTRY.value, answer["diary_entries"])
    audit.note_records("read", RecordKind.INFUSION.value, answer["infusions"])
    return answer, HTTPStatus.OK
