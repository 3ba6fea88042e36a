"""Marshmallow schemas: our JSON formats <-> mappings.records, and the error body."""

from service.schemas.errors import ErrorSchema, Problem, flatten_messages
from service.schemas.loading import RecordKind, dump_record, load_records
from service.schemas.times import ClinicalDateTime, range_problem

__all__ = [
    "ClinicalDateTime",
    "ErrorSchema",
    "Problem",
    "RecordKind",
    "dump_record",
    "flatten_messages",
    "load_records",
    "range_problem",
]
