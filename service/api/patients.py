"""GET /patients/{id}/*: a patient's records pulled from the clinic's server (our JSON or FHIR)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for
from marshmallow import RAISE, Schema, fields, validate

from service import wiring
from service.api import audit
from service.api.bodies import FHIR_JSON
from service.api.context import (
    PRIMARY_TYPE,
    patient_reference,
    require_patient_read,
    sees_diagnostics,
)
from service.api.errors import ApiError
from service.observability import current_request_id
from service.schemas import ClinicalDateTime, Problem, RecordKind, dump_record
from service.sync.pages import pull_page
from service.sync.pull import PullWindow
from service.sync.search import search_observations, searchset

bp = Blueprint("patients", __name__, url_prefix="/patients")

# FHIR search parameters a clinician's tool may pass through; the subject is always ours to set.
PASS_THROUGH = ("code", "category", "date", "status", "_lastUpdated", "_sort", "_count")
AWARE = {"invalid_awareness": "must include a timezone offset"}


class PullQuerySchema(Schema):
    """Query of GET /patients/{id}/diary-entries and /infusions."""

    class Meta:
        unknown = RAISE

    since = ClinicalDateTime(format="iso", load_default=None, error_messages=AWARE)
    until = ClinicalDateTime(format="iso", load_default=None, error_messages=AWARE)
    _lastUpdated = ClinicalDateTime(
        format="iso", load_default=None, data_key="_lastUpdated", error_messages=AWARE
    )
    _count = fields.Integer(load_default=100, data_key="_count", validate=validate.Range(1, 1000))
    page = fields.Integer(load_default=0, validate=validate.Range(0, 1_000_000))


def _pull(patient: str, kind: RecordKind, key: str) -> tuple[dict[str, Any], HTTPStatus]:
    reference = patient_reference(patient)
    require_patient_read(reference, PRIMARY_TYPE[kind])
    query = PullQuerySchema().load(request.args.to_dict())
    pulled = pull_page(
        wiring.current().sync.client,
        reference,
        kind,
        PullWindow(query["since"], query["until"], query["_lastUpdated"]),
        page=query["page"],
        count=query["_count"],
        trace_id=current_request_id(),
    )
    body: dict[str, Any] = {
        "patient": reference,
        "total": pulled.total,
        "unreadable": pulled.unreadable,
        key: [dump_record(r) for r in pulled.records],
    }
    if pulled.more:
        args = {**request.args.to_dict(), "page": str(query["page"] + 1)}
        body["next"] = f"{request.path}?{urlencode(args)}"
    audit.note("read", kind.value, [reference], len(pulled.records))
    return body, HTTPStatus.OK


@bp.get("/<patient>/diary-entries")
def diary_entries(patient: str) -> tuple[dict[str, Any], HTTPStatus]:
    """The patient's diary entries (pulled from the FHIR server), oldest first, paged."""
    return _pull(patient, RecordKind.DIARY_ENTRY, "diary_entries")


@bp.get("/<patient>/infusions")
def infusions(patient: str) -> tuple[dict[str, Any], HTTPStatus]:
    """The patient's infusion records, oldest first, paged."""
    return _pull(patient, RecordKind.INFUSION, "infusions")


def _check_search_params() -> None:
    """Only the pass-through parameters (and _page), each with a value."""
    unknown = set(request.args) - set(PASS_THROUGH) - {"_page"}
    if unknown:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "bad_parameter",
            f"unsupported search parameter(s): {', '.join(sorted(unknown))}; "
            f"supported: {', '.join(PASS_THROUGH)}, _page",
        )
    empty = sorted({name for name, value in request.args.items(multi=True) if not value.strip()})
    if empty:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "bad_parameter",
            "search parameters need a value",
            [Problem(name, "must not be empty") for name in empty],
        )


@bp.get("/<patient>/observations")
def observations(patient: str) -> Response:
    """FHIR search on the patient's Observations, passed through; answers a searchset Bundle."""
    reference = patient_reference(patient)
    require_patient_read(reference, "Observation")
    _check_search_params()
    page = search_observations(
        wiring.current().sync.client,
        wiring.current().page_key,
        reference,
        [(k, v) for k, v in request.args.items(multi=True) if k != "_page"],
        token=request.args.get("_page"),
        operator=sees_diagnostics(),
        trace_id=current_request_id(),
    )
    # Absolute links of ours (standard clients, fhirclient among them, follow `next` as given).
    here = request.url_root + request.full_path.lstrip("/").rstrip("?")
    next_url = (
        url_for("patients.observations", patient=patient, _page=page.next_token, _external=True)
        if page.next_token
        else None
    )
    audit.note("read", "observation", [reference], len(page.entries))
    answer = searchset(page, here, next_url)
    return Response(json.dumps(answer), status=HTTPStatus.OK, mimetype=FHIR_JSON)
