"""Issue 12's conversion row: map + validate (R4) as a ratio against a reference timed in the
same run, for the runtime validator (mappings.validate) and for the old fhir.resources path.

    .venv/bin/python bench/bench_validate.py [--rounds N]

Reference: the same records mapped by the same functions, no validation, each resource
serialised with orjson (json when orjson is not installed) -- the least honest work that
yields the same resources as bytes. The measured paths serialise the same way, so each
ratio is reference time / path time (1.0 = validation is free; goal >= 0.4).
Also printed: validation alone, runtime vs fhir.resources, R4 and R5, on the same resources.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    SERIALISER = "orjson"
except ImportError:  # the bench still runs; the ratio then uses json for both sides
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    SERIALISER = "json"

from mappings import to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.diary import diary_entry_to_observations
from mappings.infusion import infusion_record_to_resources
from mappings.records import DiaryEntry, Record
from mappings.validate import check, reference_check
from tests.golden.cases import DIARY_WEEK, IVIG_COURSE


def best_of(rounds: int, fn: Callable[[], Any]) -> float:
    """The fastest of `rounds` runs (seconds): the least disturbed by the shared cores."""
    fn()  # warm up (code tables, compiled validators, pydantic models)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def map_only(records: tuple[Record, ...], ctx: MappingContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in records:
        if isinstance(r, DiaryEntry):
            out.extend(diary_entry_to_observations(r, ctx))
        else:
            out.extend(infusion_record_to_resources(r, ctx))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--copies", type=int, default=10, help="golden records repeated")
    args = parser.parse_args()
    records = (*DIARY_WEEK, *IVIG_COURSE) * args.copies

    ctx4 = MappingContext("bench-app", "https://bench.example", FhirVersion.R4)
    n = len(to_resources(records, ctx4))

    def reference() -> None:
        for r in map_only(records, ctx4):
            dumps(r)

    def runtime() -> None:
        for r in to_resources(records, ctx4):  # map + runtime validation (mappings.validate)
            dumps(r)

    def old() -> None:
        for r in map_only(records, ctx4):
            error = reference_check(r, FhirVersion.R4)  # the previous runtime path
            assert error is None, error
            dumps(r)

    t_ref = best_of(args.rounds, reference)
    t_new = best_of(args.rounds, runtime)
    t_old = best_of(max(3, args.rounds // 3), old)
    print(f"conversion in-process, R4: {len(records)} records -> {n} resources ({SERIALISER})")
    print(f"  {'path':<52} {'res/s':>9} {'ratio vs ref':>13}")
    for label, t in (
        (f"reference: map, no validation, {SERIALISER}", t_ref),
        ("map + runtime validator (mappings.validate)", t_new),
        ("map + fhir.resources model_validate (old path)", t_old),
    ):
        print(f"  {label:<52} {n / t:9.0f} {t_ref / t:13.2f}")
    print(f"  runtime path vs old path: {t_old / t_new:.1f}x faster")

    for version in (FhirVersion.R4, FhirVersion.R5):
        ctx = MappingContext("bench-app", "https://bench.example", version)
        resources = map_only(records, ctx)

        def fast(resources: list[dict[str, Any]] = resources, v: FhirVersion = version) -> None:
            for r in resources:
                check(r, v, emit=True)

        def slow(resources: list[dict[str, Any]] = resources, v: FhirVersion = version) -> None:
            for r in resources:
                reference_check(r, v)

        t_fast = best_of(args.rounds, fast)
        t_slow = best_of(max(3, args.rounds // 3), slow)
        m = len(resources)
        print(
            f"validation only, {version}: runtime {m / t_fast:8.0f} res/s, "
            f"fhir.resources {m / t_slow:7.0f} res/s ({t_slow / t_fast:.1f}x)"
        )


if __name__ == "__main__":
    main()
