"""The diary items: one table of what a diary entry holds and how each item travels.

A row drives the FHIR mapping both ways (mappings/diary.py), the JSON schema's field and part
list (service/schemas/records.py), both CSV directions (service/exports/csv_columns.py,
service/imports/csv_rows.py) and the report's 0-10 series (service/report/data.py). A VALUE row
(one value in one Observation) needs nothing else: adding such a field is a DiaryEntry field, a
row here and its code in mappings/codes (CONTRIBUTING.md; tests/unit/mappings/
test_mappings_items_everywhere.py fails if openapi.yaml, the CSV columns or the schema miss it).
Items with a structure of their own (MG-ADL, symptoms, vital signs, medications) are rows too,
marked by their shape; each place handles those shapes beside the VALUE rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mappings import code_tables
from mappings.code_tables import Code


class Shape(StrEnum):
    """How an item maps: one value, or a structure with a mapping of its own."""

    VALUE = "value"  # one value in one Observation
    MG_ADL = "mg_adl"  # 8 scored items and their total (one Observation, components)
    SYMPTOMS = "symptoms"  # one Observation per named symptom
    VITALS = "vitals"  # one Observation per vital sign (blood pressure: one, two components)
    MEDICATIONS = "medications"  # one MedicationAdministration per dose


class ValueType(StrEnum):
    """The JSON type of a VALUE item (its openapi.yaml type)."""

    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"


class Series(StrEnum):
    """What the clinician's report draws of an item."""

    RATING = "rating"  # a 0-10 line the report can chart (`?symptoms=`)


# The Observation value element of each value type (with a unit: valueQuantity).
FHIR_VALUE = {
    ValueType.INTEGER: "valueInteger",
    ValueType.NUMBER: "valueDecimal",
    ValueType.BOOLEAN: "valueBoolean",
    ValueType.STRING: "valueString",
}
PYTHON_TYPE: dict[ValueType, type] = {
    ValueType.INTEGER: int,
    ValueType.NUMBER: float,
    ValueType.BOOLEAN: bool,
    ValueType.STRING: str,
}


@dataclass(frozen=True)
class DiaryItem:
    """One item of a diary entry.

    field: the DiaryEntry attribute, JSON field and CSV column; part: the business-identifier
    part of its resource (a prefix for structured items); code: (table, group, key) of its
    Observation code in mappings/codes; survey: patient-rated (observation category survey);
    unit: UCUM key (mappings/codes/ucum.yaml), the value then travels as a Quantity; minimum,
    maximum: its range (for text: the maximum length); describe: what its CSV column holds;
    series: what the report draws of it.
    """

    field: str
    part: str
    shape: Shape = Shape.VALUE
    value_type: ValueType | None = None
    code: tuple[str, str, str] | None = None
    survey: bool = False
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    describe: str = ""
    series: Series | None = None

    @property
    def fhir_value(self) -> str:
        """The Observation element that holds the value."""
        if self.unit is not None:
            return "valueQuantity"
        if self.value_type is None:
            raise ValueError(f"diary item {self.field} holds no single value")
        return FHIR_VALUE[self.value_type]

    def observation_code(self) -> Code:
        """The item's Observation code (from mappings/codes)."""
        if self.code is None:
            raise ValueError(f"diary item {self.field} has no single code")
        return code_tables.code(*self.code)

    @property
    def csv_export_column(self) -> str:
        """The analysts' CSV column: free text never leaves, only whether there was some."""
        return f"has_{self.field}" if self.value_type is ValueType.STRING else self.field


DIARY_ITEMS: tuple[DiaryItem, ...] = (
    DiaryItem("mg_adl", "mg-adl", Shape.MG_ADL),
    DiaryItem(
        "fatigue",
        "fatigue",
        value_type=ValueType.INTEGER,
        code=("local", "observations", "fatigue"),
        survey=True,
        minimum=0,
        maximum=10,
        describe="fatigue 0-10",
        series=Series.RATING,
    ),
    DiaryItem(
        "muscle_weakness",
        "muscle-weakness",
        value_type=ValueType.INTEGER,
        code=("local", "observations", "muscle_weakness"),
        survey=True,
        minimum=0,
        maximum=10,
        describe="overall muscle weakness 0-10",
        series=Series.RATING,
    ),
    DiaryItem("symptoms", "symptom-", Shape.SYMPTOMS),
    DiaryItem("vitals", "vital-", Shape.VITALS),
    DiaryItem(
        "flare_up",
        "flare-up",
        value_type=ValueType.BOOLEAN,
        code=("local", "observations", "flare_up"),
        survey=True,
        describe="patient reported a flare-up: true|false",
    ),
    DiaryItem(
        "fluids_ml",
        "fluids",
        value_type=ValueType.INTEGER,
        code=("loinc", "intake", "fluids"),
        unit="ml_per_24h",
        minimum=0,
        maximum=20000,
        describe="fluids drunk in ml",
    ),
    DiaryItem("medications", "medication-", Shape.MEDICATIONS),
    DiaryItem(
        "note",
        "note",
        value_type=ValueType.STRING,
        code=("local", "observations", "note"),
        maximum=2000,
        describe="whether the entry had a free-text note",
    ),
)

VALUE_ITEMS: tuple[DiaryItem, ...] = tuple(i for i in DIARY_ITEMS if i.shape is Shape.VALUE)
DIARY_PARTS: tuple[str, ...] = tuple(i.field for i in DIARY_ITEMS)
"""The fields of a diary entry besides its envelope (entry_id, patient, recorded_at)."""
RATINGS: tuple[str, ...] = tuple(i.field for i in DIARY_ITEMS if i.series is Series.RATING)
"""The 0-10 ratings the report charts."""
