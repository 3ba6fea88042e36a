"""Load one record or a list of records of a kind, with every problem reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError

from mappings import records as r
from mappings.record_json import record_to_json
from mappings.records import RecordKind
from service.schemas.records import DiaryEntrySchema, InfusionRecordSchema

SCHEMAS: Mapping[RecordKind, Schema] = {
    RecordKind.DIARY_ENTRY: DiaryEntrySchema(),
    RecordKind.INFUSION: InfusionRecordSchema(),
}
ID_FIELD = {kind: kind.id_field for kind in RecordKind}


class TooManyRecords(ValueError):
    """A request carries more records than one request may."""


def load_records(payload: Any, kind: RecordKind, max_records: int | None = None) -> list[r.Record]:
    """One record (an object) or a list of them; raises ValidationError listing every problem."""
    schema = SCHEMAS[kind]
    if isinstance(payload, dict):
        return [schema.load(payload)]
    _check_list(payload, max_records)
    loaded, errors = _load_each(schema, payload)
    _note_duplicates(errors, payload, kind.id_field)
    if errors:
        raise ValidationError(errors)
    return loaded


def _check_list(payload: Any, max_records: int | None) -> None:
    if not isinstance(payload, list):
        raise ValidationError({"_schema": ["must be a JSON object or an array of objects"]})
    if not payload:
        raise ValidationError({"_schema": ["must contain at least one record"]})
    if max_records is not None and len(payload) > max_records:
        raise TooManyRecords(f"{len(payload)} records in one request; at most {max_records}")


def _load_each(schema: Schema, payload: list[Any]) -> tuple[list[r.Record], dict[int, Any]]:
    """The records that load, and every other item's problems by position."""
    errors: dict[int, Any] = {}
    loaded: list[r.Record] = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            errors[index] = {"_schema": ["must be a JSON object"]}
            continue
        try:
            loaded.append(schema.load(item))
        except ValidationError as exc:
            errors[index] = exc.messages
    return loaded, errors


def _note_duplicates(errors: dict[int, Any], payload: list[Any], id_field: str) -> None:
    """A second record with an id already in the list is a problem of its id field."""
    ids = [item.get(id_field) for item in payload if isinstance(item, dict)]
    for index, item_id in enumerate(ids):
        if item_id is not None and ids.index(item_id) != index:
            errors.setdefault(index, {})
            if isinstance(errors[index], dict):
                errors[index].setdefault(id_field, []).append(
                    f"duplicates the record at [{ids.index(item_id)}]"
                )


def kind_of(record: r.Record) -> RecordKind:
    """Which of our formats a record is."""
    return RecordKind.of(record)


def dump_record(record: r.Record) -> dict[str, Any]:
    """A record back to our JSON format (the plain codec: equal to the schema's dump, faster)."""
    return record_to_json(record)
