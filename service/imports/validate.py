"""Turn a raw item into a validated record, or into problems naming its fields."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from marshmallow import ValidationError

from mappings.records import Record
from service.imports.csv_rows import column_of
from service.imports.sources import RawItem, SourceFormat
from service.schemas import Problem, RecordKind, flatten_messages
from service.schemas.loading import ID_FIELD, SCHEMAS


class KindChoice(StrEnum):
    """What the user said the file holds (--kind)."""

    DIARY = "diary"
    INFUSION = "infusion"
    AUTO = "auto"


CHOSEN = {KindChoice.DIARY: RecordKind.DIARY_ENTRY, KindChoice.INFUSION: RecordKind.INFUSION}


@dataclass(frozen=True)
class Checked:
    """One item after validation: a record, or its problems; with its id if it had one."""

    position: str
    record_id: str | None
    kind: RecordKind
    record: Record | None
    problems: tuple[Problem, ...] = ()


def item_kind(item: RawItem, choice: KindChoice) -> RecordKind:
    """The kind of one item: as chosen, as its CSV header says, or by its id field."""
    if choice is not KindChoice.AUTO:
        return CHOSEN[choice]
    if item.kind is not None:
        return RecordKind(item.kind)
    if item.data is not None and "infusion_id" in item.data:
        return RecordKind.INFUSION
    return RecordKind.DIARY_ENTRY


def check_item(item: RawItem, choice: KindChoice, fmt: SourceFormat) -> Checked:
    """Validate one item with the same schema the API uses; problems name fields (or columns)."""
    kind = item_kind(item, choice)
    record_id = None
    if item.data is not None:
        given = item.data.get(ID_FIELD[kind])
        record_id = given if isinstance(given, str) else None
    if item.data is None or item.problems:
        return Checked(item.position, record_id, kind, None, item.problems)
    try:
        record = SCHEMAS[kind].load(item.data)
    except ValidationError as exc:
        problems = flatten_messages(exc.messages)
        if fmt is SourceFormat.CSV:
            problems = [Problem(column_of(p.field), p.message) for p in problems]
        return Checked(item.position, record_id, kind, None, tuple(problems))
    return Checked(item.position, record_id, kind, record)
