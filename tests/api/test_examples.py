"""The example files in examples/ are valid input and say exactly what the golden cases say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.schemas import RecordKind, load_records
from tests.golden import cases

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("diary-week.json", RecordKind.DIARY_ENTRY, cases.DIARY_WEEK),
        ("ivig-two-days.json", RecordKind.INFUSION, cases.IVIG_COURSE),
    ],
)
def test_example_files_load_to_the_golden_records(
    name: str, kind: RecordKind, expected: tuple[object, ...]
) -> None:
    payload = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    assert load_records(payload, kind) == list(expected)
