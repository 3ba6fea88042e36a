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


def measure(rounds: int = 15, copies: int = 10) -> dict[str, float]:
    """The conversion row's rates and ratios (for bench/run_all.py or any caller)."""
    records = (*DIARY_WEEK, *IVIG_COURSE) * copies
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

    t_ref = best_of(rounds, reference)
    t_new = best_of(rounds, runtime)
    t_old = best_of(max(3, rounds // 3), old)
    out = {
        "records": len(records),
        "resources": n,
        "reference_res_s": n / t_ref,
        "runtime_res_s": n / t_new,
        "old_res_s": n / t_old,
        "ratio_runtime": t_ref / t_new,
        "ratio_old": t_ref / t_old,
    }
    for version in (FhirVersion.R4, FhirVersion.R5):
        ctx = MappingContext("bench-app", "https://bench.example", version)
        resources = map_only(records, ctx)

        def fast(resources: list[dict[str, Any]] = resources, v: FhirVersion = version) -> None:
            for r in resources:
                check(r, v, emit=True)

        def slow(resources: list[dict[str, Any]] = resources, v: FhirVersion = version) -> None:
            for r in resources:
                reference_check(r, v)

        out[f"validate_{version}_runtime_res_s"] = len(resources) / best_of(rounds, fast)
        out[f"validate_{version}_fhir_resources_res_s"] = len(resources) / best_of(
            max(3, rounds // 3), slow
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--copies", type=int, default=10, help="golden records repeated")
    args = parser.parse_args()
    m = measure(args.rounds, args.copies)
    print(
        f"conversion in-process, R4: {m['records']:.0f} records -> {m['resources']:.0f} "
        f"resources ({SERIALISER})"
    )
    print(f"  {'path':<52} {'res/s':>9} {'ratio vs ref':>13}")
    for label, rate, ratio in (
        (f"reference: map, no validation, {SERIALISER}", m["reference_res_s"], 1.0),
        ("map + runtime validator (mappings.validate)", m["runtime_res_s"], m["ratio_runtime"]),
        ("map + fhir.resources model_validate (old path)", m["old_res_s"], m["ratio_old"]),
    ):
        print(f"  {label:<52} {rate:9.0f} {ratio:13.2f}")
    print(f"  runtime path vs old path: {m['runtime_res_s'] / m['old_res_s']:.1f}x faster")
    for version in (FhirVersion.R4, FhirVersion.R5):
        fast = m[f"validate_{version}_runtime_res_s"]
        slow = m[f"validate_{version}_fhir_resources_res_s"]
        print(
            f"validation only, {version}: runtime {fast:8.0f} res/s, "
            f"fhir.resources {slow:7.0f} res/s ({fast / slow:.1f}x)"
        )


if __name__ == "__main__":
    main()
