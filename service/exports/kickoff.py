"""The Bulk Data kick-off (`$export`): the IG's parameters become one ExportRequest.

    params = parameters_of(body) or list(request.args.items(multi=True))
    export = kickoff_request(params, level="system", strict=False, kickoff_url=url)

https://hl7.org/fhir/uv/bulkdata/export.html: `_type`, `_since`, `_outputFormat`, `patient`
(Patient and Group level only) are served; `_until` too (a later IG addition). Anything else
(`_typeFilter`, `_elements`, `includeAssociatedData`, ...) is refused under
`Prefer: handling=strict` and ignored otherwise, each named in the job's error[] file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from service.exports.request import (
    EXPORTABLE_TYPES,
    ExportFormat,
    ExportRequest,
    ExportRequestError,
    parse_instant,
    parse_patient,
)

Level = Literal["system", "patient", "group"]

# The error[] file that lists the parameters a lenient kick-off ignored.
IGNORED = "OperationOutcome.request"

# The IG's three spellings of NDJSON, plus our own formats as extra values.
OUTPUT_FORMATS = {
    "application/fhir+ndjson": ExportFormat.FHIR,
    "application/ndjson": ExportFormat.FHIR,
    "ndjson": ExportFormat.FHIR,
    "text/csv": ExportFormat.CSV,
    "csv": ExportFormat.CSV,
    "records": ExportFormat.RECORDS,
}
SINGLE = ("_since", "_until", "_outputFormat")
SERVED = frozenset({*SINGLE, "_type", "patient"})


class BulkRequestError(ExportRequestError):
    """A kick-off the IG's rules refuse (400 OperationOutcome); `field` names the parameter."""

    issue_code = "invalid"


class BulkNotSupported(BulkRequestError):
    """A parameter or value the IG allows but DiaryBridge does not serve."""

    issue_code = "not-supported"


def parameters_of(body: Any) -> list[tuple[str, str]]:
    """The (name, value) pairs of a FHIR Parameters body (POST kick-off)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BulkRequestError("resourceType", "the body must be a FHIR Parameters resource")
    pairs: list[tuple[str, str]] = []
    for index, parameter in enumerate(body.get("parameter") or []):
        where = f"parameter[{index}]"
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not name:
            raise BulkRequestError(where, "each parameter needs a name")
        values = [v for k, v in parameter.items() if k.startswith("value")]
        value = values[0] if len(values) == 1 else None
        if isinstance(value, dict):  # valueReference
            value = value.get("reference")
        if not isinstance(value, str):
            raise BulkRequestError(where, f"{name} needs one value (string, instant, reference)")
        pairs.append((name, value))
    return pairs


def _split(values: Iterable[str]) -> list[str]:
    # The IG allows both repeated parameters and comma-separated lists.
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def kickoff_request(
    params: Iterable[tuple[str, str]],
    *,
    level: Level,
    strict: bool,
    kickoff_url: str,
) -> ExportRequest:
    """Check the kick-off's parameters; ignored ones (lenient) are listed in `ignored`."""
    given: dict[str, list[str]] = {}
    for name, value in params:
        given.setdefault(name, []).append(value)
    ignored: list[str] = []
    for name in sorted(set(given) - SERVED):
        if strict:
            raise BulkNotSupported(name, f"the parameter {name} is not supported")
        ignored.append(name)
    for name in SINGLE:
        if len(given.get(name, [])) > 1:
            raise BulkRequestError(name, f"{name} may be given once")
    one: Mapping[str, str | None] = {name: given.get(name, [None])[0] for name in SINGLE}

    output_format = one["_outputFormat"] or "application/fhir+ndjson"
    if output_format not in OUTPUT_FORMATS:
        # Never ignored: the caller would read a format it did not ask for.
        raise BulkNotSupported("_outputFormat", f"use one of {', '.join(OUTPUT_FORMATS)}")

    types: list[str] = []
    for name in _split(given.get("_type", [])):
        if name in EXPORTABLE_TYPES:
            if name not in types:
                types.append(name)
        elif strict:
            raise BulkNotSupported("_type", f"{name} is not exported; use {EXPORTABLE_TYPES}")
        else:
            ignored.append(f"_type={name}")
    if given.get("_type") and not types:
        raise BulkNotSupported("_type", f"none of the types is exported; use {EXPORTABLE_TYPES}")

    patients = _split(given.get("patient", []))
    if patients and level == "system":
        # Never ignored: dropping a patient filter would widen the export.
        raise BulkRequestError("patient", "patient applies to Patient/$export and Group exports")
    if len(set(patients)) > 1:
        raise BulkNotSupported("patient", "one patient per export job")
    try:
        patient = parse_patient(patients[0]) if patients else None
        since = parse_instant(one["_since"], "_since")
        until = parse_instant(one["_until"], "_until")
    except ExportRequestError as exc:
        raise BulkRequestError(exc.field, str(exc)) from None
    if since is not None and until is not None and until <= since:
        raise BulkRequestError("_until", "must be later than _since")
    return ExportRequest(
        since=since,
        until=until,
        patient=patient,
        types=tuple(types) or EXPORTABLE_TYPES,
        format=OUTPUT_FORMATS[output_format],
        kickoff=kickoff_url,
        ignored=tuple(ignored),
    )


def _ignored_issue(name: str) -> dict[str, Any]:
    return {
        "severity": "warning",
        "code": "not-supported",
        "diagnostics": f"{name}: not supported, ignored (Prefer: handling=lenient)",
    }


def ignored_parameter_outcome(name: str) -> dict[str, Any]:
    """The OperationOutcome line that tells a lenient caller a parameter was ignored."""
    return {"resourceType": "OperationOutcome", "issue": [_ignored_issue(name)]}


def accepted_outcome(ignored: Iterable[str]) -> dict[str, Any]:
    """The 202's body (the IG allows an OperationOutcome): queued, and what was ignored."""
    queued = {
        "severity": "information",
        "code": "informational",
        "diagnostics": "export job queued; poll the URL in Content-Location",
    }
    return {"resourceType": "OperationOutcome", "issue": [queued, *map(_ignored_issue, ignored)]}
