"""What an export asks for: time window, patient, resource types and output format."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mappings.records import CORE_RESOURCE_TYPES, DERIVED_RESOURCE_TYPES, RecordKind
from service.schemas import range_problem

# The types our mappings produce; an export of anything else is not ours to offer.
EXPORTABLE_TYPES = RecordKind.INFUSION.resource_types  # every type a record is stored as
# An infusion's AdverseEvent only repeats what its symptom Observations hold (as in a pull): a
# server that cannot search it (SEKMET lists none and answers 400) leaves its file empty.
DERIVED_TYPES = DERIVED_RESOURCE_TYPES
# What records and CSV are built from: a record spans these; its AdverseEvent adds nothing.
RECORD_SOURCE_TYPES = CORE_RESOURCE_TYPES


class ExportFormat(StrEnum):
    """fhir: Bulk Data NDJSON; records: our diary/infusion JSON as NDJSON; csv: for analysts."""

    FHIR = "fhir"
    RECORDS = "records"
    CSV = "csv"


class ExportRequestError(ValueError):
    """An export request that cannot be run; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ExportRequest:
    """A checked export request; times are aware UTC, types known, patient a reference."""

    since: datetime | None
    until: datetime | None
    patient: str | None
    types: tuple[str, ...]
    format: ExportFormat
    # Set by the Bulk Data kick-off ($export): its URL, the manifest's `request`, and the
    # parameters it ignored under `Prefer: handling=lenient` (names only, never values).
    kickoff: str | None = None
    ignored: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The request as stored with a job (and shown back in logs: no values in it)."""
        data: dict[str, Any] = {
            "since": instant(self.since) if self.since else None,
            "until": instant(self.until) if self.until else None,
            "patient": self.patient,
            "types": list(self.types),
            "format": self.format.value,
        }
        if self.kickoff is not None:
            data["kickoff"] = self.kickoff
        if self.ignored:
            data["ignored"] = list(self.ignored)
        return data


def instant(value: datetime) -> str:
    """A FHIR instant in UTC with a Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(value: Any, field: str) -> datetime | None:
    """An ISO 8601 date-time with a timezone, or None; ExportRequestError otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ExportRequestError(field, "must be a date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ExportRequestError(field, "must be an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ExportRequestError(field, "must carry a timezone (e.g. Z or +01:00)")
    problem = range_problem(parsed)  # before astimezone, which overflows at the calendar's edge
    if problem:
        raise ExportRequestError(field, problem)
    return parsed.astimezone(UTC)


def parse_types(value: Any) -> tuple[str, ...]:
    """A comma-separated string or a list of resource types; default: every exportable type."""
    if value is None or value == "" or value == []:
        return EXPORTABLE_TYPES
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) and not isinstance(value, str):
        raise ExportRequestError("types", "must be a list or a comma-separated string")
    types: list[str] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name not in EXPORTABLE_TYPES:
            raise ExportRequestError(
                "types", f"{name!r} is not exportable; use {', '.join(EXPORTABLE_TYPES)}"
            )
        if name not in types:
            types.append(name)
    return tuple(types)


def parse_patient(value: Any) -> str | None:
    """A patient reference 'Patient/<id>' (what both search and Patient/$export take)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith("Patient/") or "|" in value:
        raise ExportRequestError("patient", "must be a reference such as Patient/123")
    return value


PUBLIC_FIELDS = frozenset({"since", "until", "patient", "types", "format"})
# Only a stored job request carries these; the $export kick-off sets them, no body may.
STORED_FIELDS = frozenset({"kickoff", "ignored"})


def export_request(data: Mapping[str, Any], *, stored: bool = False) -> ExportRequest:
    """Check a request body (API) or the command line's options (CLI) in one place.

    `stored`: a job's request as saved, which may also carry the kick-off's URL and notes.
    """
    unknown = set(data) - (PUBLIC_FIELDS | STORED_FIELDS if stored else PUBLIC_FIELDS)
    if unknown:
        raise ExportRequestError(sorted(unknown)[0], "unknown field")
    since = parse_instant(data.get("since"), "since")
    until = parse_instant(data.get("until"), "until")
    if since is not None and until is not None and until <= since:
        raise ExportRequestError("until", "must be later than since")
    raw_format = data.get("format") or ExportFormat.FHIR.value
    try:
        fmt = ExportFormat(raw_format)
    except ValueError:
        raise ExportRequestError("format", "must be fhir, records or csv") from None
    return ExportRequest(
        since=since,
        until=until,
        patient=parse_patient(data.get("patient")),
        types=parse_types(data.get("types")),
        format=fmt,
        kickoff=_stored_text(data.get("kickoff"), "kickoff"),
        ignored=tuple(_stored_text(n, "ignored") or "" for n in data.get("ignored") or ()),
    )


def _stored_text(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ExportRequestError(field, "must be a string")
