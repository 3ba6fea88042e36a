"""GET /patients/{id}/*: a patient's records pulled from the clinic's server (our JSON or FHIR)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request, url_for
from marshmallow import RAISE, Schema, fields, validate

from service.api import audit
from service.api.context import (
    PRIMARY_TYPE,
    patient_reference,
    require_patient_read,
    sees_diagnostics,
)
from service.api.convert import FHIR_JSON
from service.api.errors import ApiError
from service.api.sync import runtime
from service.fhir_client import BadRequest, OutcomeIssue, clean_diagnostics
from service.observability import current_request_id
from service.schemas import ClinicalDateTime, Problem, RecordKind, dump_record
from service.sync.pull import PullWindow, pull_records

bp = Blueprint("patients", __name__, url_prefix="/patients")
log = logging.getLogger(__name__)

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


def _refusal(issue: OutcomeIssue, operator: bool) -> str:
    said = f"{issue.severity}: {issue.code}"
    diagnostics = clean_diagnostics(issue.diagnostics) if operator else None
    return f"{said} ({diagnostics})" if diagnostics else said


def _pull(patient: str, kind: RecordKind, key: str) -> tuple[dict[str, Any], HTTPStatus]:
    reference = patient_reference(patient)
    require_patient_read(reference, PRIMARY_TYPE[kind])
    query = PullQuerySchema().load(request.args.to_dict())
    window = PullWindow(query["since"], query["until"], query["_lastUpdated"])
    pulled = pull_records(runtime().client, reference, kind, window, current_request_id())
    start = query["page"] * query["_count"]
    page = pulled.records[start : start + query["_count"]]
    body: dict[str, Any] = {
        "patient": reference,
        "total": len(pulled.records),
        "unreadable": pulled.unreadable,
        key: [dump_record(r) for r in page],
    }
    if start + len(page) < len(pulled.records):
        args = {**request.args.to_dict(), "page": str(query["page"] + 1)}
        body["next"] = f"{request.path}?{urlencode(args)}"
    audit.note("read", kind.value, [reference], len(page))
    return body, HTTPStatus.OK


@bp.get("/<patient>/diary-entries")
def diary_entries(patient: str) -> tuple[dict[str, Any], HTTPStatus]:
    """The patient's diary entries (pulled from the FHIR server), oldest first, paged."""
    return _pull(patient, RecordKind.DIARY_ENTRY, "diary_entries")


@bp.get("/<patient>/infusions")
def infusions(patient: str) -> tuple[dict[str, Any], HTTPStatus]:
    """The patient's infusion records, oldest first, paged."""
    return _pull(patient, RecordKind.INFUSION, "infusions")


def _signing_key() -> bytes:
    key: bytes = current_app.extensions["diarybridge.page_key"]
    return key


# Marks a token whose search already left out another patient's entries: the server's `total`
# then counts them too, so no page of that search claims it. Signed with the URL.
_DROPPED = b"!"


def page_token(url: str, dropped: bool = False) -> str:
    """An opaque, signed token for a server's next link: callers cannot forge another search."""
    raw = (_DROPPED if dropped else b"") + url.encode()
    mac = hmac.new(_signing_key(), raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


def page_url(token: str) -> tuple[str, bool]:
    """The server URL inside a token we signed (and whether its search dropped entries), or 400."""
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        blob = b""
    mac, raw = blob[:16], blob[16:]
    expected = hmac.new(_signing_key(), raw, hashlib.sha256).digest()[:16]
    if len(blob) <= 16 or not hmac.compare_digest(mac, expected):
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "bad_parameter", "_page is not a token this service issued"
        )
    dropped = raw.startswith(_DROPPED)
    return raw.removeprefix(_DROPPED).decode(), dropped


@bp.get("/<patient>/observations")
def observations(patient: str) -> Response:
    """FHIR search on the patient's Observations, passed through; answers a searchset Bundle."""
    reference = patient_reference(patient)
    require_patient_read(reference, "Observation")
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
    client = runtime().client
    dropped_before = False
    try:
        if "_page" in request.args:
            url, dropped_before = page_url(request.args["_page"])
            bundle = next(client.search_pages_from(url, request_id=current_request_id()))
        else:
            params = [("subject", reference), *request.args.items(multi=True)]
            bundle = next(
                client.search_pages("Observation", params, request_id=current_request_id())
            )
    except BadRequest as exc:
        # The caller's own search, refused by the server: where and why, as issue code and
        # severity. Its diagnostics may quote stored values: for system/* callers only, cleaned.
        issues = exc.outcome.issues if exc.outcome else ()
        operator = sees_diagnostics()
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "invalid_search",
            "the FHIR server refused the search",
            [Problem(", ".join(i.expression) or "query", _refusal(i, operator)) for i in issues],
        ) from None
    # Defence in depth: whatever the server sends, only this patient's resources go out.
    # The client made references relative to its base: one under another base is not this patient.
    entries = [
        e
        for e in bundle.get("entry", [])
        if (e.get("resource") or {}).get("subject", {}).get("reference") == reference
    ]
    left_out = len(bundle.get("entry", [])) - len(entries)
    if left_out:
        log.warning("left out %d search entries not about the patient", left_out)
    dropped = dropped_before or left_out > 0
    # Absolute links of ours (standard clients, fhirclient among them, follow `next` as given);
    # the server's next link travels signed inside `_page`.
    here = request.url_root + request.full_path.lstrip("/").rstrip("?")
    links = [{"relation": "self", "url": here}]
    for link in bundle.get("link", []):
        if link.get("relation") == "next" and link.get("url"):
            token = page_token(link["url"], dropped)
            links.append(
                {
                    "relation": "next",
                    "url": url_for(
                        "patients.observations", patient=patient, _page=token, _external=True
                    ),
                }
            )
    answer: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if isinstance(bundle.get("total"), int) and not dropped:
        # The server's count of this patient's matches; once we left out entries it counted,
        # it is not the number a client will see, so none is claimed.
        answer["total"] = bundle["total"]
    answer["entry"] = entries
    audit.note("read", "observation", [reference], len(entries))
    return Response(json.dumps(answer), status=HTTPStatus.OK, mimetype=FHIR_JSON)
