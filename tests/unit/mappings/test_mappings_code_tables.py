"""The code data files: complete for every enum, a source on every entry, typed errors."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from mappings import code_tables
from mappings.errors import CodeTableError, UnknownCode
from mappings.records import MG_ADL_ITEMS, Access, Reason, Route, Setting, Severity, Symptom

LOCAL_PREFIX = "https://diarybridge.dev/fhir/CodeSystem/"


@pytest.mark.parametrize("symptom", list(Symptom))
def test_every_symptom_has_a_code(symptom: Symptom) -> None:
    entry = code_tables.symptom_code(symptom.value)
    assert entry.system in ("http://snomed.info/sct", f"{LOCAL_PREFIX}mg-diary")
    assert code_tables.symptom_key(entry.system, entry.code) == symptom.value


def test_every_enum_value_has_an_entry() -> None:
    for severity in Severity:
        assert (
            code_tables.code("snomed", "severity", severity.value).system
            == "http://snomed.info/sct"
        )
    for route in Route:
        code_tables.code("snomed", "route", route.value)
    for reason in Reason:
        code_tables.code("snomed", "reason", reason.value)
    for access in Access:
        code_tables.code("local", "access", access.value)
    for setting in Setting:
        code_tables.code("hl7", "admin_category_r4", setting.value)
        code_tables.code("hl7", "admin_location_r5", setting.value)
    for item in MG_ADL_ITEMS:
        code_tables.code("local", "mg_adl_items", item)


@pytest.mark.parametrize("name", code_tables.CODE_FILES)
def test_every_entry_in_the_raw_file_has_code_display_and_source(name: str) -> None:
    raw = yaml.safe_load(resources.files("mappings.codes").joinpath(f"{name}.yaml").read_text())
    for section, entries in raw.items():
        if section == "system":
            continue
        for key, entry in entries.items():
            for field in ("code", "display", "source"):
                assert entry.get(field), f"{name}.yaml {section}.{key} lacks {field}"


@pytest.mark.parametrize("name", code_tables.CODE_FILES)
def test_codes_are_unique_within_a_section(name: str) -> None:
    for section, entries in code_tables.table(name).sections.items():
        pairs = [(e.system, e.code) for e in entries.values()]
        assert len(pairs) == len(set(pairs)), f"{name}.yaml {section} repeats a code"


def test_local_codes_live_under_our_domain_and_say_local() -> None:
    for entries in code_tables.table("local").sections.values():
        for entry in entries.values():
            assert entry.system.startswith(LOCAL_PREFIX)
            assert entry.source.startswith("local")


def test_standard_files_use_their_systems() -> None:
    systems = {
        "loinc": "http://loinc.org",
        "snomed": "http://snomed.info/sct",
        "ucum": "http://unitsofmeasure.org",
    }
    for name, system in systems.items():
        for entries in code_tables.table(name).sections.values():
            assert {e.system for e in entries.values()} == {system}


def test_unknown_key_names_file_and_key() -> None:
    with pytest.raises(UnknownCode, match=r"snomed\.yaml has no entry severity\.extreme"):
        code_tables.code("snomed", "severity", "extreme")
    with pytest.raises(UnknownCode, match=r"symptoms\.hiccups"):
        code_tables.symptom_code("hiccups")


def test_malformed_entry_names_file_and_key() -> None:
    bad = {
        "system": "http://loinc.org",
        "vital_signs": {"pulse": {"code": "8867-4", "display": "x"}},
    }
    with pytest.raises(
        CodeTableError, match=r"loinc\.yaml vital_signs\.pulse: missing or empty source"
    ):
        code_tables._parse("loinc", bad)


@pytest.mark.parametrize(
    ("name", "atc"),
    [
        ("Paracetamol", "N02BE01"),
        ("paracetamol 1 g tablet", "N02BE01"),
        ("Acetaminophen 500 mg oral", "N02BE01"),
        ("Cetirizine hydrochloride 10 mg", "R06AE07"),
        ("Paracetamol/codeine 500/30 mg", None),  # a combination is never one substance
        ("Paracetamol and caffeine", None),
        ("Co-codamol", None),
        ("Hydrocortisone sodium succinate 100 mg injection", "H02AB09"),
        ("Hydrocortisone 1% cream", None),  # topical: another ATC group, left uncoded
        ("Pyridostigmine bromide 60 mg tablet", None),  # N07AA02 not verified yet
        ("", None),
        (None, None),
    ],
)
def test_a_medication_name_gets_an_atc_code_only_when_it_names_one_known_substance(
    name: str | None, atc: str | None
) -> None:
    found = code_tables.substance_code(name)
    assert (found.code if found else None) == atc
    if found is not None:
        assert found.system == "http://www.whocc.no/atc"
