"""Marshmallow schemas: our JSON formats <-> mappings.records, and the error body."""

from service.schemas.errors import ErrorSchema, Problem, flatten_messages
from service.schemas.loading import RecordKind, dump_record, load_records

__all__ = [
    "ErrorSchema",
    "Problem",
    "RecordKind",
    "dump_record",
    "flatten_messages",
    "load_records",
]
