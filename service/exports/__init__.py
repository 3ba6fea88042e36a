"""Bulk export for research and registry jobs: FHIR NDJSON, our records, or CSV, plus a manifest.

    request = export_request({"since": "2026-01-01T00:00:00Z", "format": "fhir"})
    manifest = run_export(fhir, request, Path("out"), url_for=..., requires_access_token=False)

The CLI runs one export in the foreground; the API queues jobs for ExportRunner (runner.py).
"""

from service.exports.fhir_source import ExportCancelled, FetchResult, fetch
from service.exports.request import (
    EXPORTABLE_TYPES,
    RECORD_SOURCE_TYPES,
    ExportFormat,
    ExportRequest,
    ExportRequestError,
    export_request,
)
from service.exports.run import MANIFEST, media_type, run_export
from service.exports.runner import ExportRunner

__all__ = [
    "EXPORTABLE_TYPES",
    "MANIFEST",
    "RECORD_SOURCE_TYPES",
    "ExportCancelled",
    "ExportFormat",
    "ExportRequest",
    "ExportRequestError",
    "ExportRunner",
    "FetchResult",
    "export_request",
    "fetch",
    "media_type",
    "run_export",
]
