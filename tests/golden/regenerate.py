"""Rewrite the golden files from tests/golden/cases.py: `python -m tests.golden.regenerate`.

Review the diff before committing: the golden test compares against what is committed."""

from __future__ import annotations

from tests.golden.cases import CASES
from tests.golden.golden import VERSIONS, bundle, dump, path, records_json


def main() -> None:
    """Write <case>.records.json and <case>.<R4|R5>.bundle.json for every case."""
    for case, records in CASES.items():
        path(case, "records").write_text(dump(records_json(records)), "utf-8")
        for version in VERSIONS:
            path(case, f"{version.value}.bundle").write_text(
                dump(bundle(records, version, case)), "utf-8"
            )
            print(f"wrote {path(case, f'{version.value}.bundle').name}")


if __name__ == "__main__":
    main()
