"""Print how fast the mapping core converts records -> resources (with and without the
runtime validation, mappings/validate.py) and resources -> records.

Run: .venv/bin/python bench/bench_convert_mappings.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mappings import from_resources, to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.diary import diary_entry_to_observations
from mappings.infusion import infusion_record_to_resources
from mappings.records import DiaryEntry
from tests.golden.cases import DIARY_WEEK, IVIG_COURSE

ROUNDS = 20


def timed(label: str, count: int, fn: Callable[[], Any]) -> None:
    fn()  # warm up caches (code tables, pydantic models)
    start = time.perf_counter()
    for _ in range(ROUNDS):
        fn()
    seconds = (time.perf_counter() - start) / ROUNDS
    print(f"{label:<48} {seconds * 1000:8.2f} ms   {count / seconds:9.0f} resources/s")


def main() -> None:
    records = (*DIARY_WEEK, *IVIG_COURSE)
    for version in (FhirVersion.R4, FhirVersion.R5):
        ctx = MappingContext("bench-app", "https://bench.example", version)
        resources = to_resources(records, ctx)
        n = len(resources)
        print(f"{version}: {len(records)} records -> {n} resources")

        def unvalidated(ctx: MappingContext = ctx) -> None:
            for r in records:
                if isinstance(r, DiaryEntry):
                    diary_entry_to_observations(r, ctx)
                else:
                    infusion_record_to_resources(r, ctx)

        timed("  map only (no validation)", n, unvalidated)
        timed(
            "  to_resources (map + runtime validation)",
            n,
            lambda ctx=ctx: to_resources(records, ctx),
        )
        timed(
            "  from_resources (validate input + map back)",
            n,
            lambda resources=resources: from_resources(resources),
        )


if __name__ == "__main__":
    main()
