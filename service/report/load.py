"""The report's data for one patient: pulled from the clinic's server, signals evaluated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from mappings.records import DiaryEntry, InfusionRecord
from mappings.signals import RuleSet, evaluate
from service.fhir_client import FhirClient
from service.report.data import ReportData, build_report
from service.signals import one_patient
from service.sync.pull import KIND_OF_KEY, PullWindow, pull_records

DIARY, INFUSION = KIND_OF_KEY["diary-entry"], KIND_OF_KEY["infusion"]


@dataclass(frozen=True)
class PatientReport:
    """The report, and what it was made of (for the audit trail and the page's footnote)."""

    data: ReportData
    diary_entries: int
    infusions: int
    unreadable: int


def patient_report(
    client: FhirClient,
    patient_reference: str,
    symptoms: Sequence[str],
    rules: RuleSet,
    since: datetime | None = None,
    until: datetime | None = None,
    trace_id: str | None = None,
) -> PatientReport:
    """The patient's MG-ADL and chosen ratings in the window against all their infusions."""
    diary = pull_records(client, patient_reference, DIARY, PullWindow(since, until), trace_id)
    # Every infusion, so the days to the next one are known at the window's end as well.
    infusions = pull_records(client, patient_reference, INFUSION, PullWindow(), trace_id)
    data = build_report(
        [r for r in diary.records if isinstance(r, DiaryEntry)],
        [r for r in infusions.records if isinstance(r, InfusionRecord)],
        symptoms,
        since,
        until,
        # Signals over what was pulled: the page opens with the active ones.
        signals=evaluate(one_patient([*diary.records, *infusions.records]), rules),
    )
    return PatientReport(
        data=data,
        diary_entries=len(diary.records),
        infusions=len(infusions.records),
        unreadable=diary.unreadable + infusions.unreadable,
    )
