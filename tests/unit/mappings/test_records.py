"""The field lists other modules build columns from stay equal to the dataclasses."""

from __future__ import annotations

from dataclasses import fields

from mappings.records import MG_ADL_ITEMS, VITAL_FIELDS, MgAdl, VitalSigns


def test_field_lists_match_their_dataclasses() -> None:
    assert tuple(f.name for f in fields(MgAdl)) == MG_ADL_ITEMS
    assert tuple(f.name for f in fields(VitalSigns)) == VITAL_FIELDS
