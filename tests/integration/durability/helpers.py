"""What the durability tests share: synthetic records, the ledger and the server, asked directly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import mappings
from mappings.context import FhirVersion, MappingContext
from mappings.identifiers import business_identifier
from mappings.records import Record
from service.schemas import RecordKind, load_records
from service.store.models import LedgerEntry
from tests.api.samples import diary, infusion

REPO = Path(__file__).resolve().parents[3]
NAMESPACE = "durability-tests"  # the sending app: our identifier system ends with it

Identifier = tuple[str, str, str]  # resource type, system, value


def unique_patient(tag: str) -> str:
    """A patient id no other test (or earlier run against a reused server) has used."""
    return f"synthetic-dur-{tag}-{datetime.now(UTC).strftime('%H%M%S%f')}"


def diary_payloads(patient: str, count: int) -> list[dict[str, Any]]:
    """`count` synthetic diary entries for one patient, a day apart, values varying."""
    start = datetime(2026, 9, 1, 20, 0, tzinfo=UTC)
    out = []
    for day in range(count):
        at = (start + timedelta(days=day)).isoformat()
        out.append(
            diary(
                entry_id=f"{patient}-d{day:03d}",
                patient={"reference": f"Patient/{patient}"},
                recorded_at=at,
                fatigue=day % 11,
                muscle_weakness=(day * 3) % 11,
                medications=[
                    {"name": "pyridostigmine", "dose": 60.0, "dose_unit": "mg", "taken_at": at}
                ],
            )
        )
    return out


def infusion_payloads(patient: str, count: int) -> list[dict[str, Any]]:
    """`count` synthetic IVIG infusions for one patient, four weeks apart."""
    out = []
    for n in range(count):
        shift = timedelta(weeks=4 * n)
        start = datetime(2026, 6, 1, 8, 0, tzinfo=UTC) + shift
        out.append(
            infusion(
                infusion_id=f"{patient}-ivig{n:02d}",
                patient={"reference": f"Patient/{patient}"},
                start=start.isoformat(),
                end=(start + timedelta(hours=5)).isoformat(),
                rate_steps=[{"at": start.isoformat(), "ml_per_hour": 30.0 + n}],
                premedications=[],
                adverse_reactions=[
                    {
                        "symptom": "headache",
                        "severity": "mild",
                        "onset": (start + timedelta(hours=6)).isoformat(),
                    }
                ],
            )
        )
    return out


def records_of(
    diaries: Sequence[dict[str, Any]], infusions: Sequence[dict[str, Any]] = ()
) -> list[Record]:
    """Validated records, as the API would accept them."""
    loaded = load_records(list(diaries), RecordKind.DIARY_ENTRY) if diaries else []
    if infusions:
        loaded += load_records(list(infusions), RecordKind.INFUSION)
    return loaded


# What these tests count on the server: every record's own resources. An infusion's AdverseEvent
# repeats its symptom Observations and goes only to servers that take update-as-create.
COUNTED_TYPES = ("Observation", "MedicationAdministration")


def expected_identifiers(
    records: Sequence[Record], namespace: str = NAMESPACE
) -> Counter[Identifier]:
    """Every identifier of the COUNTED_TYPES the records map to, each once: what the server must
    end up with."""
    ctx = MappingContext(
        app_namespace=namespace,
        source=f"urn:diarybridge:client:{namespace}",
        fhir_version=FhirVersion.R4,
    )
    found: Counter[Identifier] = Counter()
    for record in records:
        for resource in mappings.record_to_resources(record, ctx):
            if resource["resourceType"] in COUNTED_TYPES:
                found[(resource["resourceType"], *business_identifier(resource))] += 1
    assert found and max(found.values()) == 1
    return found


def server_identifiers(base_url: str, patient: str) -> Counter[Identifier]:
    """Identifiers of every Observation and MedicationAdministration about the patient, counted."""
    found: Counter[Identifier] = Counter()
    for resource_type in COUNTED_TYPES:
        url: str | None = f"{base_url}/{resource_type}"
        params: dict[str, Any] | None = {"subject": f"Patient/{patient}", "_count": 500}
        while url:
            bundle = requests.get(url, params=params, timeout=30).json()
            params = None
            for item in bundle.get("entry", []):
                resource = item["resource"]
                for ident in resource.get("identifier", []):
                    found[(resource["resourceType"], ident["system"], ident["value"])] += 1
            links = bundle.get("link", [])
            url = next((ln["url"] for ln in links if ln["relation"] == "next"), None)
    return found


def ledger(sessions: sessionmaker[Session]) -> dict[str, tuple[str, int]]:
    """source_id -> (status, attempts) of every ledger entry."""
    with sessions.begin() as session:
        rows = session.execute(
            select(LedgerEntry.source_id, LedgerEntry.status, LedgerEntry.attempts)
        ).all()
    return {row.source_id: (row.status, row.attempts) for row in rows}


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until condition() holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def worker_env(database_url: str, fhir_base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `diarybridge worker` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIARYBRIDGE_")}
    env.update(
        DATABASE_URL=database_url,
        DIARYBRIDGE_FHIR_BASE_URL=fhir_base_url,
        DIARYBRIDGE_LOG_FORMAT="text",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log: Path, *, once: bool = False) -> subprocess.Popen[bytes]:
    """`diarybridge worker [--once]` as a child process, its output in `log`."""
    command = [sys.executable, "-m", "service.cli", "worker", *(["--once"] if once else [])]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM (the worker finishes its batch and exits), SIGKILL if it does not."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode
