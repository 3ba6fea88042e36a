"""Time `diarybridge convert` on 10,000 synthetic diary entries; prints entries per second.

Usage: .venv/bin/python bench/bench_convert_cli.py [--entries N] [--fhir-version R4|R5]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mappings.records import MG_ADL_ITEMS

SYMPTOMS = ["ptosis", "double_vision", "arm_weakness", "headache", "fatigue_like"]


def synthetic_entry(n: int, rng: random.Random) -> dict:
    """One realistic synthetic diary entry (MG-ADL, ratings, vitals, a medication, a note)."""
    at = datetime(2026, 1, 1, 20, 0, tzinfo=UTC) + timedelta(hours=n)
    return {
        "entry_id": f"bench-{n}",
        "patient": {"reference": f"Patient/synthetic-{n % 50}"},
        "recorded_at": at.isoformat(),
        "mg_adl": {item: rng.randint(0, 3) for item in MG_ADL_ITEMS},
        "fatigue": rng.randint(0, 10),
        "muscle_weakness": rng.randint(0, 10),
        "symptoms": [
            {"symptom": s, "severity": rng.choice(["mild", "moderate", "severe"])}
            for s in rng.sample(SYMPTOMS[:4], 2)
        ],
        "vitals": {
            "heart_rate_bpm": rng.randint(55, 100),
            "systolic_mmhg": 120,
            "diastolic_mmhg": 80,
            "body_temperature_c": 36.7,
        },
        "medications": [
            {"name": "pyridostigmine", "dose": 60.0, "dose_unit": "mg", "taken_at": at.isoformat()}
        ],
        "note": "synthetic",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--fhir-version", default="R4", choices=("R4", "R5"))
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "entries.ndjson"
        with source.open("w") as out:
            for n in range(args.entries):
                out.write(json.dumps(synthetic_entry(n, rng)) + "\n")
        target = Path(tmp) / "resources.ndjson"
        command = [
            str(Path(sys.executable).parent / "diarybridge"),
            "convert",
            str(source),
            "--format",
            "ndjson",
            "--fhir-version",
            args.fhir_version,
            "-o",
            str(target),
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        resources = sum(1 for _ in target.open())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"diarybridge convert ({args.fhir_version}): {args.entries} entries -> {resources} "
        f"resources in {elapsed:.1f} s"
    )
    print(
        f"  {args.entries / elapsed:.0f} entries/s, {resources / elapsed:.0f} resources/s, "
        f"peak RSS {peak_mb:.0f} MB (NDJSON output streams in chunks of 500 entries)"
    )


if __name__ == "__main__":
    main()
