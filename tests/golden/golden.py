"""Rendering of the golden files, shared by the test and by `python -m tests.golden.regenerate`."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from mappings import collection_bundle, to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.records import Record
from tests.golden.cases import APP, CASE_OPTIONS, SOURCE

GOLDEN_DIR = Path(__file__).parent
VERSIONS = (FhirVersion.R4, FhirVersion.R5)


def ctx(version: FhirVersion, case: str = "") -> MappingContext:
    options = CASE_OPTIONS.get(case, {})
    return MappingContext(app_namespace=APP, source=SOURCE, fhir_version=version, **options)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def records_json(records: tuple[Record, ...]) -> list[dict[str, Any]]:
    """The input records as JSON, for reading the golden files side by side."""
    return [{"kind": type(r).__name__, **_plain(dataclasses.asdict(r))} for r in records]


def bundle(records: tuple[Record, ...], version: FhirVersion, case: str = "") -> dict[str, Any]:
    """The expected collection Bundle for the records (with the case's mapping options)."""
    return collection_bundle(to_resources(records, ctx(version, case)), ctx(version, case))


def path(case: str, what: str) -> Path:
    return GOLDEN_DIR / f"{case}.{what}.json"


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
