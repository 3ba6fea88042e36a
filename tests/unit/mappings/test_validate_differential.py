"""The runtime validator (mappings.validate.check) is at least as strict as fhir.resources.

On a deterministic corpus of >= 10,000 mutants of the golden resources, every mutant that
fhir.resources (the reference, model_validate) rejects is rejected by the runtime validator
too, and every bad required-binding value is rejected (fhir.resources lets those pass).
The counts are printed (pytest -s) for the closing note of issue 12.
"""

from __future__ import annotations

import collections
import copy
import json
import time
import typing
from importlib import resources
from typing import Any

import pytest
import yaml
from fhir.resources import get_fhir_model_class as r5_model_class
from fhir.resources.R4B import get_fhir_model_class as r4b_model_class
from hypothesis import HealthCheck, given, settings

from mappings import to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.errors import InvalidResource
from mappings.records import DiaryEntry, InfusionRecord
from mappings.validate import (
    check,
    check_bundle,
    reference_check,
    validate_bundle,
    validate_resource,
)
from tests.unit.mappings.mutants import corpus, golden_resources
from tests.unit.mappings.strategies import diary_entries, infusion_records


def test_golden_resources_pass_both_validators() -> None:
    for version, resource in golden_resources():
        assert reference_check(resource, version) is None
        assert check(resource, version, emit=True) is None, resource["resourceType"]


def test_differential_mutants_never_more_lenient_than_fhir_resources(
    record_property: Any,
) -> None:
    started = time.perf_counter()
    mutants = corpus()
    assert len(mutants) >= 10_000
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    lenient: list[tuple[str, str]] = []
    binding_missed: list[str] = []
    counts = collections.Counter[str]()
    for m in mutants:
        ref = reference_check(m.resource, m.version) is not None
        fast = check(m.resource, m.version, emit=True) is not None
        # what others send us goes through the same validator without the unit rule
        given = check(m.resource, m.version) is not None
        counts["rejected by runtime validator, input mode"] += given
        if ref and not given:
            lenient.append(("input " + m.kind, str(m.resource)[:300]))
        counts["mutants"] += 1
        counts["rejected by fhir.resources"] += ref
        counts["rejected by runtime validator"] += fast
        counts["stricter (runtime rejects, fhir.resources accepts)"] += fast and not ref
        by_kind[m.kind]["mutants"] += 1
        by_kind[m.kind]["fhir.resources"] += ref
        by_kind[m.kind]["runtime"] += fast
        if ref and not fast:
            lenient.append((m.kind, str(m.resource)[:300]))
        if m.binding:
            counts["required-binding mutants"] += 1
            if not fast:
                binding_missed.append(str(m.resource)[:300])
    counts["more lenient (fhir.resources rejects, runtime accepts)"] = len(lenient)
    print(f"\ndifferential validation ({time.perf_counter() - started:.1f} s):")
    for label, n in counts.items():
        print(f"  {label}: {n}")
        record_property(label, n)  # kept in the junit XML for the closing note
    for kind, c in sorted(by_kind.items()):
        print(f"  {kind:<16} {dict(c)}")
    assert counts["required-binding mutants"] > 300
    assert not lenient, lenient[:3]
    assert not binding_missed, binding_missed[:3]
    # the corpus is not trivially valid: most mutants are real defects for the reference too
    assert counts["rejected by fhir.resources"] > counts["mutants"] // 2


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_bogus_status_refused_before_sending(version: FhirVersion) -> None:
    resource = next(r for v, r in golden_resources() if v == version and "status" in r)
    bogus = {**resource, "status": "bogus"}
    assert reference_check(bogus, version) is None  # what fhir.resources misses
    with pytest.raises(InvalidResource, match="required value set"):
        validate_resource(bogus, version)


def test_units_we_send_are_ucum() -> None:
    version, resource = next(
        (v, r) for v, r in golden_resources() if v == FhirVersion.R4 and "valueQuantity" in r
    )
    other = copy.deepcopy(resource)
    other["valueQuantity"]["system"] = "http://example.org/units"
    assert check(resource, version, emit=True) is None
    assert "UCUM" in (check(other, version, emit=True) or "")
    assert check(other, version) is None  # what others send us may use other unit systems


@pytest.mark.parametrize("field,value", [("type", "bogus"), ("method", "FETCH")])
def test_bundle_type_and_request_method_bound(field: str, value: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7513b3b9-d3e5-5923-8e70-275269d8fc1c",
                "resource": {"resourceType": "Observation", "status": "final"},
                "request": {"method": "PUT", "url": "Observation/x"},
            }
        ],
    }
    assert check_bundle(bundle, FhirVersion.R4) is None  # entries' resources checked before
    if field == "type":
        bundle["type"] = value
    else:
        bundle["entry"][0]["request"]["method"] = value
    with pytest.raises(InvalidResource, match="required value set"):
        validate_bundle(bundle, FhirVersion.R4)


def test_unimplemented_types_fall_back_to_fhir_resources() -> None:
    resource = next(r for v, r in golden_resources() if v == FhirVersion.R4 and "code" in r)
    narrative = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
    assert check({**resource, "text": narrative}, FhirVersion.R4) is None
    bad = {**resource, "text": {**narrative, "div": 5}}
    assert check(bad, FhirVersion.R4) is not None
    assert check({**resource, "text": {**narrative, "status": "bogus"}}, FhirVersion.R4)


def _bindings_file() -> dict[str, Any]:
    text = resources.files("mappings.codes").joinpath("bindings.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _model_of(resource_type: str, version: FhirVersion) -> Any:
    return (r4b_model_class if version == FhirVersion.R4 else r5_model_class)(resource_type)


def _coded_elements(node: Any, cls: Any, version: FhirVersion, out: set[str]) -> None:
    """Model.element of every element with a code list in fhir.resources that our output uses."""
    if isinstance(node, list):
        for item in node:
            _coded_elements(item, cls, version, out)
        return
    if not isinstance(node, dict):
        return
    if "resourceType" in node and cls.__name__ in ("Resource", "ResourceType"):
        cls = _model_of(node["resourceType"], version)
    by_alias = {(info.alias or name): info for name, info in cls.model_fields.items()}
    for key, value in node.items():
        info = by_alias.get(key)
        if info is None:
            continue
        if "enum_values" in (info.json_schema_extra or {}):
            out.add(f"{cls.__name__}.{key}")
        inner = [a for a in _flatten(info.annotation) if hasattr(a, "get_model_klass")]
        if inner:
            _coded_elements(value, inner[0].get_model_klass(), version, out)


def _flatten(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for a in args for leaf in _flatten(a)]


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_every_coded_element_we_emit_has_its_required_binding(version: FhirVersion) -> None:
    table = _bindings_file()[str(version)]
    used: set[str] = set()
    for v, resource in golden_resources():
        if v == version:
            _coded_elements(resource, _model_of(resource["resourceType"], v), v, used)
    assert used >= {"Observation.status", "MedicationAdministration.status", "Bundle.type"}
    assert used - set(table) == set()


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_binding_data_is_sourced_and_agrees_with_fhir_resources(version: FhirVersion) -> None:
    compared = 0
    for key, entry in _bindings_file()[str(version)].items():
        assert str(entry["source"]).startswith("http://hl7.org/fhir/"), key
        model, element = key.split(".")
        # a typo would leave a binding silently unchecked: every key names a real element
        fields = {(i.alias or n): i for n, i in _model_of(model, version).model_fields.items()}
        listed = (fields[element].json_schema_extra or {}).get("enum_values")
        if listed and "+" not in listed:  # fhir.resources' list is complete: it must agree
            assert set(map(str, entry["codes"])) == set(listed), key
            compared += 1
    assert compared >= 10


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=diary_entries(), record=infusion_records())
def test_mapper_output_passes_both_validators(
    version: FhirVersion, entry: DiaryEntry, record: InfusionRecord
) -> None:
    # the runtime validator is stricter, so it must never refuse what the mapper makes
    # (to_resources raises InvalidResource otherwise); fhir.resources agrees on each resource
    ctx = MappingContext("prop-app", "https://prop-app.example/diary", version)
    for resource in to_resources([entry, record], ctx):
        assert reference_check(resource, version) is None


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_types_we_may_emit_later_are_checked_from_the_metadata(version: FhirVersion) -> None:
    # Flag and AdverseEvent are not mapped yet: the validator compiles them on first use
    flag = {
        "resourceType": "Flag",
        "status": "active",
        "code": {"text": "flare-up"},
        "subject": {"reference": "Patient/p1"},
    }
    assert reference_check(flag, version) is None
    assert check(flag, version, emit=True) is None
    assert "required value set" in (check({**flag, "status": "bogus"}, version) or "")
    assert "not allowed" in (check({**flag, "subject": {"reference": "Device/d1"}}, version) or "")
    assert check({**flag, "subject": {"reference": "Patient/p1"}, "extra": 1}, version)


def test_contained_reference_must_name_a_contained_resource() -> None:
    version, resource = next(
        (v, r) for v, r in golden_resources() if v == FhirVersion.R4 and "contained" in r
    )
    text = json.dumps(resource)
    assert '"#product"' in text
    broken = json.loads(text.replace('"#product"', '"#nothing"'))
    assert reference_check(broken, version) is None  # fhir.resources does not resolve it
    assert "names no contained resource" in (check(broken, version) or "")


def test_binding_of_a_type_holds_in_its_subtypes() -> None:
    age = {"value": 40, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}}
    assert check({**condition, "onsetAge": {**age, "comparator": ">"}}, FhirVersion.R4) is None
    bad = {**condition, "onsetAge": {**age, "comparator": "about"}}
    assert reference_check(bad, FhirVersion.R4) is None
    assert "required value set of Quantity.comparator" in (check(bad, FhirVersion.R4) or "")
