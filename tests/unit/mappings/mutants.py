"""Deterministic mutants of the golden resources for the differential validation test.

Each mutant is one small defect in one golden resource (tests/golden/*.bundle.json): wrong
JSON type, bad date/time, unknown element, missing element, bad code, bad required-binding
value, bad reference, a second choice value, empty values, and R4/R5 field swaps. A seeded
random.Random picks the places, so every run sees the same corpus (cheap: no hypothesis
shrinking, one deep copy per mutant).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mappings.context import FhirVersion

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def _bound(path: tuple[Any, ...]) -> bool:
    """Elements with a required binding in what we emit (mappings/codes/bindings.yaml)."""
    last = path[-1]
    if last == "status":  # Observation, MedicationAdministration, contained Medication/Device
        return len(path) == 1 or (len(path) == 3 and path[0] == "contained")
    if last == "type":
        return path == ("type",)  # Bundle.type (Reference.type is a uri, not bound)
    return (
        (last == "use" and "identifier" in path)
        or last == "comparator"
        or (last == "method" and "request" in path)
    )


DATE_KEYS = ("DateTime", "Instant", "start", "end", "issued", "recorded", "lastUpdated", "at")
BAD_DATES = (
    "2026-13-01",
    "2026-02-30",
    "2026-11-06T25:00:00+01:00",
    "2026-11-06T10:00:00",  # a time without a zone
    "2026-11-06T10:00+01:00",  # no seconds
    "06/11/2026",
    "2026-11-06 10:00:00Z",
    "2026-1-6",
    "",
)
BAD_CODES = ("two  spaces", " leading", "trailing ", "", "tab\there", "new\nline")
BAD_REFERENCES = (
    "not a reference",
    "Patient/",
    "/Patient/x",
    "Patient/has space",
    "patient/lowercase",
    "Bogus",
    "",
    "urn:uuid:not-a-uuid",
)
# R4 <-> R5 spellings of MedicationAdministration elements (mappings/versions.py).
SWAPS = {
    "effectiveDateTime": "occurenceDateTime",
    "effectivePeriod": "occurencePeriod",
    "occurenceDateTime": "effectiveDateTime",
    "occurencePeriod": "effectivePeriod",
    "medicationReference": "medication",
    "medicationCodeableConcept": "medication",
    "medication": "medicationCodeableConcept",
    "reasonCode": "reason",
    "reason": "reasonCode",
    "recorded": "effectiveDateTime",
}


@dataclass(frozen=True)
class Mutant:
    kind: str
    version: FhirVersion
    resource: dict[str, Any]
    binding: bool  # a bad required-binding value: the runtime validator must refuse it


def golden_resources() -> list[tuple[FhirVersion, dict[str, Any]]]:
    out = []
    for path in sorted(GOLDEN.glob("*.bundle.json")):
        version = FhirVersion.R4 if ".R4." in path.name else FhirVersion.R5
        bundle = json.loads(path.read_text("utf-8"))
        out.extend((version, entry["resource"]) for entry in bundle["entry"])
        # the Bundle itself (type, fullUrl, request), cut to two entries to stay cheap
        out.append((version, {**bundle, "entry": bundle["entry"][:2]}))
        request = {"method": "PUT", "url": "Observation/x"}
        transaction = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{**e, "request": request} for e in bundle["entry"][:2]],
        }
        out.append((version, transaction))
    return out


def _nodes(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nodes(v, (*path, i))


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        root = root[step]
    return root


def _set(resource: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    _parent(out, path)[path[-1]] = value
    return out


def _wrong_type(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return rng.choice(["true", 1, None, [True]])
    if isinstance(value, int | float):
        return rng.choice([str(value), True, None, [value], {"value": value}])
    if isinstance(value, str):
        return rng.choice([1, 1.5, True, None, [value], {"value": value}])
    if isinstance(value, list):
        return rng.choice([value[0], [], "x", None])
    return rng.choice(["x", 1, [], None, {}, [value]])


def mutants_of(
    version: FhirVersion, resource: dict[str, Any], rng: random.Random, per_resource: int
) -> Iterator[Mutant]:
    nodes = [(p, v) for p, v in _nodes(resource) if p]
    leaves = [(p, v) for p, v in nodes if not isinstance(v, dict | list)]
    keyed = [(p, v) for p, v in nodes if isinstance(p[-1], str)]
    objects = [(p, v) for p, v in _nodes(resource) if isinstance(v, dict)]
    strings = [(p, v) for p, v in leaves if isinstance(v, str)]
    dates = [(p, v) for p, v in strings if any(str(p[-1]).endswith(k) for k in DATE_KEYS)]
    codes = [(p, v) for p, v in strings if p[-1] in ("code", "status", "use", "id")]
    bound = [(p, v) for p, v in strings if _bound(p)]
    refs = [(p, v) for p, v in strings if p[-1] == "reference"]
    swaps = [(p, v) for p, v in keyed if p[-1] in SWAPS]
    other = FhirVersion.R5 if version == FhirVersion.R4 else FhirVersion.R4

    kinds: list[tuple[str, list[Any]]] = [
        ("wrong-type", leaves),
        ("wrong-type-node", nodes),
        ("bad-datetime", dates),
        ("unknown-element", objects),
        ("missing-element", keyed),
        ("bad-code", codes),
        ("bad-binding", bound),
        ("bad-reference", refs),
        ("field-swap", swaps),
        ("empty", nodes),
        ("second-choice", objects),
    ]
    kinds = [(k, pool) for k, pool in kinds if pool]
    for n in range(per_resource):
        kind, pool = kinds[n % len(kinds)]
        path, value = pool[rng.randrange(len(pool))]
        if kind == "wrong-type" or kind == "wrong-type-node":
            yield Mutant(kind, version, _set(resource, path, _wrong_type(value, rng)), False)
        elif kind == "bad-datetime":
            yield Mutant(kind, version, _set(resource, path, rng.choice(BAD_DATES)), False)
        elif kind == "unknown-element":
            out = copy.deepcopy(resource)
            target = _parent(out, (*path, None)) if path else out
            target[rng.choice(["bogusElement", "Status", "effective", "valueDate", "_bad"])] = (
                rng.choice(["x", 1, {"text": "x"}])
            )
            yield Mutant(kind, version, out, False)
        elif kind == "missing-element":
            out = copy.deepcopy(resource)
            del _parent(out, path)[path[-1]]
            yield Mutant(kind, version, out, False)
        elif kind == "bad-code":
            yield Mutant(kind, version, _set(resource, path, rng.choice(BAD_CODES)), False)
        elif kind == "bad-binding":
            bad = rng.choice(["bogus", value.upper(), value + "x", "final " + value, "active"])
            if bad == value:
                bad = "bogus"
            yield Mutant(kind, version, _set(resource, path, bad), True)
        elif kind == "bad-reference":
            bad = rng.choice(BAD_REFERENCES)
            if rng.random() < 0.3:
                bad = "Bogus/" + value.rsplit("/", 1)[-1]
            yield Mutant(kind, version, _set(resource, path, bad), False)
        elif kind == "field-swap":
            out = copy.deepcopy(resource)
            parent = _parent(out, path)
            parent[SWAPS[path[-1]]] = parent.pop(path[-1])
            yield Mutant(kind, version, out, False)
            # the same resource read as the other release
            yield Mutant("version-swap", other, resource, False)
        elif kind == "empty":
            empty = {} if isinstance(value, dict) else [] if isinstance(value, list) else ""
            yield Mutant(kind, version, _set(resource, path, empty), False)
        elif kind == "second-choice":
            out = copy.deepcopy(resource)
            target = _parent(out, (*path, None)) if path else out
            choice = rng.choice(
                [("valueString", "x"), ("valueBoolean", True), ("effectivePeriod", {})]
            )
            target[choice[0]] = choice[1]
            yield Mutant(kind, version, out, False)


def corpus(total: int = 10_500, seed: int = 12) -> list[Mutant]:
    """At least `total` mutants, spread evenly over the golden resources."""
    rng = random.Random(seed)
    resources = golden_resources()
    per_resource = -(-total // len(resources))
    out: list[Mutant] = []
    for version, resource in resources:
        out.extend(mutants_of(version, resource, rng, per_resource))
    return out
