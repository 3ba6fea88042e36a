"""Exported FHIR resources back to our records (NDJSON of our JSON, or CSV), memory-flat.

A record spans several resources (a diary entry is many Observations), and a server returns
them in any order. They are grouped through a scratch SQLite file on disk, so memory holds one
record's resources at a time however many were exported.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mappings
from mappings.errors import MappingError, NotOurResource
from mappings.identifiers import resource_business_key
from mappings.record_json import record_to_json
from mappings.records import Record, RecordKind
from service.exports.csv_columns import DIARY_COLUMNS, INFUSION_COLUMNS, header, row
from service.exports.ndjson import TypeFiles, dumps
from service.fhir_client.references import normalise_references
from service.sync.pull import retracted

log = logging.getLogger(__name__)

INSERT_BATCH = 5000
DIARY, INFUSION = RecordKind.DIARY_ENTRY.value, RecordKind.INFUSION.value
FILE_NAMES = {DIARY: "diary-entries", INFUSION: "infusions"}


@dataclass
class RecordCounts:
    """What the conversion did: records per kind, groups it could not map, resources not ours,
    and resources left out as retracted."""

    records: dict[str, int]
    failed_groups: int = 0
    not_ours: int = 0
    retracted: int = 0


def _group_id(resource: dict[str, Any]) -> str:
    key = resource_business_key(resource)
    return "\x1f".join(key.record)  # with the patient token: two patients' ids never merge


def grouped(paths: Iterable[Path], scratch: Path, counts: RecordCounts) -> Iterator[list[str]]:
    """The JSON lines of each record's resources, one group at a time (via SQLite on disk)."""
    scratch.mkdir(parents=True, exist_ok=True)
    db_path = scratch / "groups.sqlite3"
    db_path.unlink(missing_ok=True)
    db = sqlite3.connect(db_path)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE line (grp TEXT NOT NULL, body TEXT NOT NULL)")
        batch: list[tuple[str, str]] = []
        for path in paths:
            with path.open(encoding="utf-8") as source:
                for text in source:
                    if not text.strip():
                        continue
                    resource = json.loads(text)
                    if retracted(resource):
                        # The pull's rule: a withdrawn resource is no part of a live record.
                        counts.retracted += 1
                        continue
                    try:
                        batch.append((_group_id(resource), text))
                    except NotOurResource:
                        counts.not_ours += 1
                        continue
                    if len(batch) >= INSERT_BATCH:
                        db.executemany("INSERT INTO line VALUES (?, ?)", batch)
                        batch.clear()
        db.executemany("INSERT INTO line VALUES (?, ?)", batch)
        db.execute("CREATE INDEX ix_line_grp ON line (grp)")
        db.commit()
        current: str | None = None
        group: list[str] = []
        for grp, body in db.execute("SELECT grp, body FROM line ORDER BY grp, rowid"):
            if grp != current and group:
                yield group
                group = []
            current = grp
            group.append(body)
        if group:
            yield group
    finally:
        db.close()
        db_path.unlink(missing_ok=True)


def _outcome(group: list[str], exc: Exception) -> dict[str, Any]:
    # Only resource ids and the error type: the exception text may quote values.
    ids = []
    for text in group:
        resource = json.loads(text)
        ids.append(f"{resource.get('resourceType')}/{resource.get('id')}")
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "processing",
                "diagnostics": f"cannot map back to a record ({type(exc).__name__}): "
                + ", ".join(ids),
            }
        ],
    }


def with_relative_references(value: Any, base_url: str | None) -> Any:
    """`value` with every reference to `base_url` written relative ('Patient/x').

    Bulk files may carry absolute references (Firely; SEKMET with absolute_references): a record
    names its patient as 'Patient/x' whatever the server wrote, so the round trip holds.
    """
    return value if base_url is None else normalise_references(value, base_url)


def records_from(
    paths: Iterable[Path],
    scratch: Path,
    counts: RecordCounts,
    on_error: Callable[[dict[str, Any]], None],
    base_url: str | None = None,
) -> Iterator[Record]:
    """Our records from exported resource files; a group that fails becomes an outcome."""
    for group in grouped(paths, scratch, counts):
        try:
            yield from mappings.from_resources(
                with_relative_references(json.loads(text), base_url) for text in group
            )
        except MappingError as exc:
            counts.failed_groups += 1
            on_error(_outcome(group, exc))


def _kind(record: Record) -> str:
    return RecordKind.of(record).value


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().rstrip("\n")


def write_records(
    paths: Iterable[Path],
    scratch: Path,
    out: TypeFiles,
    errors: TypeFiles,
    *,
    as_csv: bool,
    report: Callable[[str], None],
    base_url: str | None = None,
) -> RecordCounts:
    """Write records (NDJSON of our JSON, or CSV rows) per kind into `out`.

    `base_url`: the server the resources came from, whose absolute references become relative.
    """
    counts = RecordCounts(records={DIARY: 0, INFUSION: 0})
    columns = {DIARY: DIARY_COLUMNS, INFUSION: INFUSION_COLUMNS}

    def on_error(outcome: dict[str, Any]) -> None:
        errors.write("OperationOutcome", dumps(outcome))

    for record in records_from(paths, scratch, counts, on_error, base_url):
        kind = _kind(record)
        name = FILE_NAMES[kind]
        if as_csv:
            if name not in out.counts:
                out.handle(name).write(_csv_line(header(columns[kind])) + "\n")
            out.write(name, _csv_line(row(columns[kind], record)))
        else:
            out.write(name, dumps(record_to_json(record)))
        counts.records[kind] += 1
        total = sum(counts.records.values())
        if total % 1000 == 0:
            report(f"records: {total}")
    log.info(
        "export: %d diary entries, %d infusions, %d groups failed, %d resources not ours, "
        "%d retracted left out",
        counts.records[DIARY],
        counts.records[INFUSION],
        counts.failed_groups,
        counts.not_ours,
        counts.retracted,
    )
    return counts
