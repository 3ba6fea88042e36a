"""GET /patients/{id}/report: the clinician's chart of a patient's diary against the infusions."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from mappings.records import CORE_RESOURCE_TYPES
from service import wiring
from service.api import audit
from service.api.context import patient_reference, require_patient_read
from service.observability import current_request_id
from service.report import (
    CONTENT_SECURITY_POLICY,
    DEFAULT_SYMPTOMS,
    UnknownSymptom,
    draw,
    parse_symptoms,
    render_page,
)
from service.report.load import patient_report
from service.schemas import ClinicalDateTime, RecordKind

bp = Blueprint("report", __name__, url_prefix="/patients")

AWARE: dict[str, Any] = {"invalid_awareness": "must include a timezone offset"}
IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


class ReportQuerySchema(Schema):
    """Query of GET /patients/{id}/report."""

    class Meta:
        unknown = RAISE

    since = ClinicalDateTime(format="iso", load_default=None, error_messages=AWARE)
    until = ClinicalDateTime(format="iso", load_default=None, error_messages=AWARE)
    symptoms = fields.String(load_default=",".join(DEFAULT_SYMPTOMS))
    format = fields.String(load_default="html", validate=validate.OneOf(("html", "png", "svg")))

    @validates("symptoms")
    def _known(self, value: str, **_: Any) -> None:
        try:
            if not parse_symptoms(value):
                raise ValidationError("name at least one symptom")
        except UnknownSymptom as exc:
            raise ValidationError(str(exc)) from None


def _private(response: Response) -> Response:
    # A patient's data: never kept by shared caches.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<patient>/report")
def report(patient: str) -> Response:
    """The patient's MG-ADL and chosen ratings over time, infusions and reactions marked."""
    reference = patient_reference(patient)
    # The page shows infusions too: the caller must be allowed to read those as well.
    require_patient_read(reference, *CORE_RESOURCE_TYPES)
    query = ReportQuerySchema().load(request.args.to_dict())
    if query["since"] and query["until"] and query["until"] <= query["since"]:
        raise ValidationError({"until": ["must be after since"]})
    made = patient_report(
        wiring.current().sync.client,
        reference,
        parse_symptoms(query["symptoms"]),
        wiring.current().signal_rules,
        query["since"],
        query["until"],
        current_request_id(),
    )
    data = made.data
    audit.note("read", RecordKind.DIARY_ENTRY.value, [reference], made.diary_entries)
    audit.note("read", RecordKind.INFUSION.value, [reference], made.infusions)
    if query["format"] in IMAGE_TYPES:
        image = draw(data, query["format"])
        return _private(Response(image, HTTPStatus.OK, mimetype=IMAGE_TYPES[query["format"]]))
    args = request.args.to_dict()
    html = render_page(
        data,
        reference,
        png_href=f"?{urlencode({**args, 'format': 'png'})}",
        svg_href=f"?{urlencode({**args, 'format': 'svg'})}",
        unreadable=made.unreadable,
    )
    response = _private(Response(html, HTTPStatus.OK, mimetype="text/html"))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
