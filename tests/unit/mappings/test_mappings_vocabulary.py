"""One vocabulary: the record kinds, their id fields and resource types are defined once."""

from __future__ import annotations

import re
from pathlib import Path

from mappings.context import CLIENT_SOURCE_PREFIX, client_source
from mappings.identifiers import KINDS, parse_identifier
from mappings.records import CORE_RESOURCE_TYPES, RecordKind
from service import store
from service.schemas.records import DiaryEntrySchema, InfusionRecordSchema

ROOT = Path(__file__).resolve().parents[3]


def test_the_store_mirrors_the_record_kinds() -> None:
    # The store imports no mappings, so its CHECK constraint keeps a copy: the same values.
    assert [k.value for k in store.RecordKind] == [k.value for k in RecordKind]


def test_each_kind_names_its_id_field_in_the_schema_and_the_identifiers() -> None:
    assert RecordKind.DIARY_ENTRY.id_field in DiaryEntrySchema().fields
    assert RecordKind.INFUSION.id_field in InfusionRecordSchema().fields
    assert KINDS == ("diary-entry", "infusion")
    key = parse_identifier("https://diarybridge.dev/fhir/sid/app", "infusion/I-1/medication")
    assert key is not None and key.kind is not None and RecordKind(key.kind) is RecordKind.INFUSION


def test_resource_types_of_the_kinds() -> None:
    assert RecordKind.DIARY_ENTRY.resource_types == ("Observation", "MedicationAdministration")
    assert RecordKind.INFUSION.resource_types == (*CORE_RESOURCE_TYPES, "AdverseEvent")


def test_kind_of_json() -> None:
    assert RecordKind.of_json({"infusion_id": "I-1"}) is RecordKind.INFUSION
    assert RecordKind.of_json({"entry_id": "E-1"}) is RecordKind.DIARY_ENTRY
    assert RecordKind.of_json([]) is RecordKind.DIARY_ENTRY


def test_the_client_source_prefix_is_written_once() -> None:
    assert client_source("my-app") == "urn:diarybridge:client:my-app"
    spelled = [
        str(path.relative_to(ROOT))
        for folder in ("service", "mappings")
        for path in (ROOT / folder).rglob("*.py")
        if CLIENT_SOURCE_PREFIX in path.read_text(encoding="utf-8")
    ]
    assert spelled == ["mappings/context.py"]


def test_no_second_record_kind_enum_outside_the_store_mirror() -> None:
    defining = re.compile(r"^\s*DIARY_ENTRY\s*=\s*\"diary-entry\"", re.MULTILINE)
    found = sorted(
        str(path.relative_to(ROOT))
        for folder in ("service", "mappings")
        for path in (ROOT / folder).rglob("*.py")
        if defining.search(path.read_text(encoding="utf-8"))
    )
    assert found == ["mappings/records.py", "service/store/models.py"]
