"""One export from start to manifest: fetch, convert if asked, commit files, write the manifest.

Called by the CLI (`diarybridge export`) and by the API's background runner alike.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.exports.fhir_source import ERRORS, ExportCancelled, fetch
from service.exports.kickoff import IGNORED, ignored_parameter_outcome
from service.exports.manifest import build_manifest
from service.exports.ndjson import TypeFiles, dumps
from service.exports.records import DIARY, FILE_NAMES, INFUSION, write_records
from service.exports.request import (
    EXPORTABLE_TYPES,
    RECORD_SOURCE_TYPES,
    ExportFormat,
    ExportRequest,
)
from service.fhir_client import FhirClient

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
WORK = ".work"
MEDIA_TYPES = {
    ".ndjson": "application/fhir+ndjson",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
}
RECORD_TYPES = {FILE_NAMES[DIARY]: DIARY, FILE_NAMES[INFUSION]: INFUSION}

__all__ = ["MANIFEST", "ExportCancelled", "media_type", "run_export"]


def media_type(name: str, export_format: ExportFormat) -> str:
    """The Content-Type of one exported file."""
    if export_format is ExportFormat.RECORDS and name.endswith(".ndjson") and ERRORS not in name:
        return "application/x-ndjson"
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


def _never() -> bool:
    return False


def _ignore(_: str) -> None:
    return None


def clear_outputs(out_dir: Path) -> None:
    """Remove what an earlier attempt left (parts, scratch, our outputs); nothing else."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / WORK, ignore_errors=True)
    stems = [*EXPORTABLE_TYPES, ERRORS, f"{ERRORS}.server", IGNORED, *RECORD_TYPES]
    names = [f"{stem}{suffix}" for stem in stems for suffix in (".ndjson", ".csv")]
    for name in [MANIFEST, *names, *(f"{n}.part" for n in names)]:
        (out_dir / name).unlink(missing_ok=True)


def run_export(
    fhir: FhirClient,
    request: ExportRequest,
    out_dir: Path,
    *,
    url_for: Callable[[str], str],
    requires_access_token: bool,
    request_url: str | None = None,
    report: Callable[[str], None] = _ignore,
    should_stop: Callable[[], bool] = _never,
    use_bulk: bool | None = None,
) -> dict[str, Any]:
    """Run one export into `out_dir` (emptied first) and return its manifest (also saved there).

    Output files: FHIR '<Type>.ndjson'; records 'diary-entries.ndjson' / 'infusions.ndjson';
    CSV 'diary-entries.csv' / 'infusions.csv'; errors 'OperationOutcome.ndjson'.
    """
    clear_outputs(out_dir)
    work = out_dir / WORK
    as_fhir = request.format is ExportFormat.FHIR
    fhir_files = TypeFiles(out_dir if as_fhir else work / "fhir")
    errors = TypeFiles(out_dir)
    out = TypeFiles(out_dir, ".csv" if request.format is ExportFormat.CSV else ".ndjson")
    try:
        # A record spans both source types (an infusion's reactions are Observations).
        fetch_request = (
            request
            if as_fhir
            else ExportRequest(
                request.since, request.until, request.patient, RECORD_SOURCE_TYPES, request.format
            )
        )
        result = fetch(
            fhir,
            fetch_request,
            fhir_files,
            work / "staging",
            report=report,
            should_stop=should_stop,
            use_bulk=use_bulk,
        )
        fetched = fhir_files.commit()
        files: dict[str, tuple[str, int]] = {}
        if as_fhir:
            files = {f"{t}.ndjson": (t, n) for t, n in fetched.items()}
        else:
            if ERRORS in fetched:
                # The server's own error outcomes go on into ours.
                shutil.move(fhir_files.path(ERRORS), out_dir / f"{ERRORS}.server.ndjson")
                files[f"{ERRORS}.server.ndjson"] = (ERRORS, fetched[ERRORS])
            paths = [fhir_files.path(t) for t in fetched if t != ERRORS]
            write_records(
                paths,
                work / "groups",
                out,
                errors,
                as_csv=request.format is ExportFormat.CSV,
                report=report,
                base_url=fhir.base_url,
            )
            for name, count in out.commit().items():
                files[out.path(name).name] = (RECORD_TYPES[name], count)
            for name, count in errors.commit().items():
                files[errors.path(name).name] = (ERRORS, count)
        extension: dict[str, Any] = {"fetchedBy": result.method}
        if result.patient_check is not None:
            extension["patientCheck"] = result.patient_check
        if request.ignored:
            # Bulk Data, Prefer: handling=lenient: say in error[] which parameters were ignored.
            notes = TypeFiles(out_dir)
            for name in request.ignored:
                notes.write(IGNORED, dumps(ignored_parameter_outcome(name)))
            files[notes.path(IGNORED).name] = (ERRORS, notes.commit()[IGNORED])
        manifest = build_manifest(
            transaction_time=result.transaction_time,
            request_url=request.kickoff or request_url or result.request_url,
            requires_access_token=requires_access_token,
            files=files,
            url_for=url_for,
            extension=extension,
        )
        (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        log.info("export: done by %s, %d output file(s)", result.method, len(manifest["output"]))
        return manifest
    except BaseException:
        for files_ in (fhir_files, errors, out):
            files_.abort()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
