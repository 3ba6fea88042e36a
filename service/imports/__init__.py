"""Bulk import: JSON array, NDJSON or CSV files of records into the outbox, then to FHIR."""

from service.imports.csv_rows import DIARY_COLUMNS, INFUSION_COLUMNS
from service.imports.progress import NoProgress, PlainProgress, progress_for
from service.imports.run import BATCH_SIZE, Importer, ImportSummary
from service.imports.sources import RawItem, SourceFormat, read_items
from service.imports.validate import KindChoice

__all__ = [
    "BATCH_SIZE",
    "DIARY_COLUMNS",
    "INFUSION_COLUMNS",
    "ImportSummary",
    "Importer",
    "KindChoice",
    "NoProgress",
    "PlainProgress",
    "RawItem",
    "SourceFormat",
    "progress_for",
    "read_items",
]
