"""FHIR Bulk Data export ($export): kick-off, status polling, streamed download, delete.

    status_url = kick_off(fhir, types=["Observation"], since="2026-01-01T00:00:00Z")
    manifest = wait_for_manifest(fhir, status_url, on_progress=print)
    for item in manifest.output:
        lines = download(fhir, item.url, out_dir / f"{item.type}.ndjson", manifest)
    delete_job(fhir, status_url)

Follows the Bulk Data Access IG (v2): `Prefer: respond-async`, 202 + Content-Location, polling
that honours Retry-After and reports X-Progress, a JSON manifest, NDJSON outputs.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from .client import FhirClient
from .errors import FhirClientError, FhirServerError, FhirTransportError, InvalidServerResponse
from .retry import parse_retry_after

log = logging.getLogger(__name__)

NDJSON = "application/fhir+ndjson"
FHIR_JSON = "application/fhir+json"
DEFAULT_POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 60.0
DOWNLOAD_CHUNK = 64 * 1024


class BulkExportTimeout(FhirTransportError):
    """The server's export job did not finish within the time we allowed it."""


class BulkExportCancelled(Exception):
    """The caller asked to stop while waiting for the server."""


class BulkExportRefused(FhirClientError):
    """The server would not run the export as asked: a parameter refused at kick-off (strict
    handling), or the export run while ignoring one (said in the manifest's error[]).

    The caller's answer is another way to fetch (paged search), never the server's output.
    """


# Kick-off answers that mean "not this export here" (a parameter, the operation, the level);
# auth failures and 5xx are not refusals and stay the client's typed errors.
REFUSED_AT_KICK_OFF = frozenset(
    {
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.METHOD_NOT_ALLOWED,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        HTTPStatus.NOT_IMPLEMENTED,
    }
)
# The IG asks servers to say in error[] what they could not honour; a not-supported issue there
# means the export is not the one asked for (SEKMET: "Ignored unsupported parameters: [...]").
IGNORED_PARAMETER_CODE = "not-supported"


@dataclass(frozen=True)
class BulkOutput:
    """One file of a manifest: the resource type, where to fetch it, and its count if given."""

    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True)
class BulkManifest:
    """The complete-status body of a Bulk Data export."""

    transaction_time: str
    request: str
    requires_access_token: bool
    output: tuple[BulkOutput, ...]
    error: tuple[BulkOutput, ...]


@dataclass(frozen=True)
class BulkStatus:
    """One status poll: still running (progress, retry_after) or done (manifest)."""

    manifest: BulkManifest | None
    progress: str | None = None
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        """True once the server answered 200 with a manifest."""
        return self.manifest is not None


def export_path(patient: str | None, group: str | None = None) -> str:
    """The kick-off path: system-level, Patient-level (patient given) or Group-level."""
    if group is not None:
        return f"Group/{group}/$export"
    return "Patient/$export" if patient is not None else "$export"


# The kick-off's parameters as a Parameters resource carries them.
_PARAMETER_TYPE = {"_outputFormat": "valueString", "_type": "valueString", "_since": "valueInstant"}


def _patient_parameters(params: list[tuple[str, str]], patient: str) -> dict[str, Any]:
    """The kick-off parameters and the patient, as the POST to Patient/$export sends them."""
    parameter: list[dict[str, Any]] = [
        {"name": name, _PARAMETER_TYPE[name]: value} for name, value in params
    ]
    parameter.append({"name": "patient", "valueReference": {"reference": patient}})
    return {"resourceType": "Parameters", "parameter": parameter}


def kick_off(
    fhir: FhirClient,
    *,
    types: Sequence[str] = (),
    since: str | None = None,
    patient: str | None = None,
    output_format: str = NDJSON,
    strict: bool = True,
) -> str:
    """Start an export and return its status URL (the kick-off's Content-Location).

    With a patient, a POST of Parameters to Patient/$export (the IG's only way to name a
    patient); otherwise a GET on [base]/$export with _type and _since. `strict` asks the server
    (`Prefer: handling=strict`) to refuse a parameter it does not support instead of ignoring
    it; a refusal raises BulkExportRefused.
    """
    prefer = "respond-async, handling=strict" if strict else "respond-async"
    headers = {"Accept": FHIR_JSON, "Prefer": prefer}
    url = f"{fhir.base_url}/{export_path(patient)}"
    params: list[tuple[str, str]] = [("_outputFormat", output_format)]
    if types:
        params.append(("_type", ",".join(types)))
    if since is not None:
        params.append(("_since", since))
    try:
        if patient is not None:
            body = _patient_parameters(params, patient)
            # A repeated POST would start a second job on the server: never retried.
            response = fhir.send("POST", url, body=body, headers=headers, idempotent=False)
        else:
            response = fhir.send("GET", url, params=params, headers=headers)
    except FhirServerError as exc:
        if exc.status in REFUSED_AT_KICK_OFF:
            raise BulkExportRefused(f"$export kick-off refused: {exc}") from exc
        raise
    response.close()
    if response.status_code != HTTPStatus.ACCEPTED:
        raise InvalidServerResponse(f"$export kick-off -> {response.status_code}, expected 202")
    location = response.headers.get("Content-Location")
    if not location:
        raise InvalidServerResponse("$export kick-off answered 202 without Content-Location")
    status_url = urljoin(url, location)
    log.info("fhir $export started (%s)", export_path(patient))
    return status_url


def ignored_parameter_issues(outcome: Any) -> int:
    """How many issues of an OperationOutcome (from a manifest's error[]) say that something
    asked for was not supported, i.e. ignored; 0 for anything else."""
    if not isinstance(outcome, Mapping) or outcome.get("resourceType") != "OperationOutcome":
        return 0
    issues = outcome.get("issue")
    if not isinstance(issues, list):
        return 0
    return sum(
        1
        for issue in issues
        if isinstance(issue, Mapping) and issue.get("code") == IGNORED_PARAMETER_CODE
    )


def _output_items(value: Any, field: str) -> tuple[BulkOutput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidServerResponse(f"$export manifest: {field} is not a list")
    items = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise InvalidServerResponse(f"$export manifest: a {field} item has no type")
        if not isinstance(item.get("url"), str):
            raise InvalidServerResponse(f"$export manifest: a {field} item has no url")
        count = item.get("count")
        items.append(
            BulkOutput(item["type"], item["url"], count if isinstance(count, int) else None)
        )
    return tuple(items)


def parse_manifest(data: Any) -> BulkManifest:
    """Read a complete-status body into a BulkManifest; reject what is not one."""
    if not isinstance(data, Mapping):
        raise InvalidServerResponse("$export manifest is not a JSON object")
    transaction_time = data.get("transactionTime")
    if not isinstance(transaction_time, str):
        raise InvalidServerResponse("$export manifest has no transactionTime")
    requires = data.get("requiresAccessToken")
    return BulkManifest(
        transaction_time=transaction_time,
        request=str(data.get("request", "")),
        requires_access_token=requires is True,
        output=_output_items(data.get("output", []), "output"),
        error=_output_items(data.get("error", []), "error"),
    )


def check_status(fhir: FhirClient, status_url: str) -> BulkStatus:
    """Poll the status URL once: 202 in progress (X-Progress, Retry-After), 200 complete.

    An error status raises the client's typed error (the job failed on the server).
    """
    response = fhir.send("GET", status_url, headers={"Accept": "application/json"})
    if response.status_code == HTTPStatus.ACCEPTED:
        response.close()
        return BulkStatus(
            manifest=None,
            progress=response.headers.get("X-Progress"),
            retry_after=parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC)),
        )
    if response.status_code != HTTPStatus.OK:
        raise InvalidServerResponse(f"$export status -> {response.status_code}")
    try:
        data = json.loads(response.content)
    except ValueError:
        raise InvalidServerResponse("$export manifest is not JSON") from None
    return BulkStatus(manifest=parse_manifest(data))


def wait_for_manifest(
    fhir: FhirClient,
    status_url: str,
    *,
    on_progress: Callable[[str | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_wait: float = 3600.0,
    default_interval: float = DEFAULT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BulkManifest:
    """Poll until the manifest arrives, waiting as Retry-After says (bounded to a minute)."""
    started = clock()
    interval = default_interval
    while True:
        status = check_status(fhir, status_url)
        if status.manifest is not None:
            return status.manifest
        if on_progress is not None:
            on_progress(status.progress)
        if should_stop is not None and should_stop():
            raise BulkExportCancelled("export cancelled while the server was still working")
        # Without Retry-After back off gently, so a long job is not polled every 2 seconds.
        wait = status.retry_after if status.retry_after is not None else interval
        wait = min(max(wait, 0.1), MAX_POLL_SECONDS)
        if clock() - started + wait > max_wait:
            raise BulkExportTimeout(f"$export not complete after {max_wait:.0f} s")
        sleep(wait)
        interval = min(interval * 1.5, MAX_POLL_SECONDS)


def download(fhir: FhirClient, url: str, dest: Path, manifest: BulkManifest) -> int:
    """Stream one output file to `dest` and return its number of lines.

    Written to `dest` + '.part' and renamed when complete, so an interrupted download leaves
    no partial file under the final name and a retry starts afresh without duplicated lines.
    """
    if manifest.requires_access_token and not fhir.owns_url(url):
        raise InvalidServerResponse("$export output needs our token but lies off the server")
    part = dest.with_name(dest.name + ".part")
    response = fhir.send(
        "GET",
        url,
        headers={"Accept": NDJSON},
        stream=True,
        authenticate=manifest.requires_access_token,
    )
    lines = 0
    last = b"\n"
    try:
        with part.open("wb") as out:
            for chunk in response.iter_content(DOWNLOAD_CHUNK):
                if chunk:
                    out.write(chunk)
                    lines += chunk.count(b"\n")
                    last = chunk[-1:]
            if last != b"\n":
                # The last line may lack its newline; NDJSON readers expect one per line.
                out.write(b"\n")
                lines += 1
            out.flush()
            os.fsync(out.fileno())
    except requests.RequestException as exc:
        part.unlink(missing_ok=True)
        raise FhirTransportError(f"$export download broke off: {type(exc).__name__}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        response.close()
    os.replace(part, dest)
    return lines


def delete_job(fhir: FhirClient, status_url: str) -> None:
    """DELETE the status URL: the server may drop the job and its files."""
    response = fhir.send("DELETE", status_url, headers={"Accept": FHIR_JSON})
    response.close()
