"""The analysts' CSV never hands a spreadsheet a formula, and export -> import still round-trips."""

from __future__ import annotations

import csv
import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from service.exports.csv_columns import (
    FORMULA_STARTS,
    INFUSION_COLUMNS,
    header,
    neutralise,
    restore,
    row,
)
from service.imports import KindChoice, read_items
from service.imports.validate import check_item
from service.schemas import RecordKind, load_records
from tests.api.samples import INFUSION

ATTACKS = ('=HYPERLINK("http://evil")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1")


def infusion(**changes: Any) -> Any:
    data = dict(INFUSION, **changes)
    data.pop("adverse_reactions")  # CSV import needs reactions as JSON (no onset column)
    return load_records(data, RecordKind.INFUSION)[0]


def export_csv(records: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header(INFUSION_COLUMNS))
    writer.writerows(row(INFUSION_COLUMNS, r) for r in records)
    return out.getvalue()


def import_csv(text: str) -> list[Any]:
    fmt, items = read_items(io.StringIO(text), "export.csv", "infusion")
    results = [check_item(item, KindChoice.INFUSION, fmt) for item in items]
    assert all(not r.problems for r in results), [r.problems for r in results]
    return [r.record for r in results]


def test_exported_text_cells_never_start_a_formula() -> None:
    records = [
        infusion(infusion_id=f"i-{n}", lot_number=text, product={"brand": text})
        for n, text in enumerate(ATTACKS)
    ]
    with io.StringIO(export_csv(records)) as source:
        rows = list(csv.DictReader(source))
    for exported, text in zip(rows, ATTACKS, strict=True):
        for column in ("lot_number", "product_brand"):
            assert exported[column] == "'" + text
            assert not exported[column].startswith(FORMULA_STARTS)


def test_numbers_are_not_text_and_stay_numbers() -> None:
    columns = (("x", "a negative number", lambda _: -5), ("y", "", lambda _: -0.5))
    assert row(columns, None) == [-5, -0.5]


def test_restore_removes_only_the_prefix_neutralise_adds() -> None:
    assert restore("'=1") == "=1"
    assert restore("''x") == "'x"
    assert restore("'x") == "'x"  # a hand-made cell's own quote stays
    assert restore("'") == "'"
    assert neutralise("'x") == "''x"  # so the patient's own leading quote survives too


# Text a patient may type: any visible text, often starting like a formula or a quote. Import
# trims the whitespace around a cell (hand-edited CSVs), so the text has none but a leading
# tab or CR, which the prefix protects.
STARTS = st.sampled_from(["", *FORMULA_STARTS, "'", "''", "'="])
TEXT = st.builds(
    lambda start, core: start + core, STARTS, st.text(min_size=1, max_size=30).map(str.strip)
)


@given(lot=TEXT, brand=TEXT)
@settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
def test_any_text_survives_export_then_import(lot: str, brand: str) -> None:
    try:
        record = infusion(lot_number=lot[:64], product={"brand": brand})
    except ValidationError:
        return  # not text the schema lets in (control characters, nothing visible)
    [back] = import_csv(export_csv([record]))
    # CSV keeps no rate steps or doses; the text cells must come back exactly.
    assert (back.lot_number, back.product.brand) == (record.lot_number, record.product.brand)
