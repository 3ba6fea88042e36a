"""The reference for `diarybridge convert`: a plain CLI doing the least honest work.

    python bench/plain_convert.py INPUT.ndjson OUTPUT.ndjson

Reads NDJSON with orjson, loads each entry with the API's schema (service.schemas), maps it
with the mapping functions (no fhir.resources validation) and writes NDJSON with orjson.
bench/run_all.py times it, start-up included, beside `diarybridge convert` on the same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mappings.context import FhirVersion, MappingContext
from mappings.diary import diary_entry_to_observations
from mappings.infusion import infusion_record_to_resources
from mappings.records import DiaryEntry
from service.schemas import RecordKind, load_records


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    app = "diarybridge-cli"  # the namespace `diarybridge convert` uses by default
    ctx = MappingContext(app, f"urn:diarybridge:client:{app}", FhirVersion.R4)
    with open(source, "rb") as lines, open(target, "wb") as out:
        for line in lines:
            if not line.strip():
                continue
            item = orjson.loads(line)
            kind = RecordKind.INFUSION if "infusion_id" in item else RecordKind.DIARY_ENTRY
            for record in load_records(item, kind):
                mapped = (
                    diary_entry_to_observations(record, ctx)
                    if isinstance(record, DiaryEntry)
                    else infusion_record_to_resources(record, ctx)
                )
                out.writelines(orjson.dumps(resource) + b"\n" for resource in mapped)


if __name__ == "__main__":
    main()
