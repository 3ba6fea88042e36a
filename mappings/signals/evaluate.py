"""Evaluate one patient's records against the rules: a pure function, history in, signals out.

Each rule turns the history into a time-ordered series of points (a record at a time, the rule
present, absent or silent there, with the resources that show it). A run of present points is
one signal: it opens at its first point and resolves at the next point where the rule is absent.
Silent points (an entry that says nothing the rule looks at) neither extend nor resolve it, so a
danger sign resolves only on an entry with a full MG-ADL that no longer shows it.

The whole history is evaluated every time: the result depends only on the records, so the same
history always yields the same signals with the same keys, whatever order records arrived in.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean, median

from mappings.identifiers import DIARY_ENTRY, INFUSION
from mappings.records import (
    DiaryEntry,
    InfusionRecord,
    InfusionStatus,
    PatientRef,
    Record,
)
from mappings.signals.rules import Rule, RuleSet, default_rules

ACTIVE = "active"
RESOLVED = "resolved"
# Parts of a record's resources (mappings/diary.py, mappings/infusion.py) used as evidence.
MG_ADL_PART = "mg-adl"
FLARE_UP_PART = "flare-up"
TEMPERATURE_PART = "vital-body-temperature"
SYMPTOM_PREFIX = "symptom-"
ADMINISTRATION_PART = "administration"
REACTION_PREFIX = "reaction-"
GIVEN = (InfusionStatus.COMPLETED, InfusionStatus.IN_PROGRESS, InfusionStatus.STOPPED)


@dataclass(frozen=True)
class Evidence:
    """One resource that shows a signal: the record, its part, the resource type, and when."""

    kind: str  # diary-entry | infusion
    record_id: str
    part: str
    resource_type: str  # Observation | MedicationAdministration
    at: datetime


@dataclass(frozen=True)
class Signal:
    """One episode of one rule for one patient: open (active) or resolved, with its evidence."""

    rule: Rule
    key: str  # rule id : kind : id of the record that opened it; stable across re-evaluation
    patient: PatientRef
    status: str  # active | resolved
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None  # kind/id of the record at which it resolved
    evidence: tuple[Evidence, ...]

    @property
    def active(self) -> bool:
        """Whether the signal still holds."""
        return self.status == ACTIVE


@dataclass(frozen=True)
class _Point:
    at: datetime
    kind: str
    record_id: str
    present: bool | None  # None: this record says nothing the rule looks at
    evidence: tuple[Evidence, ...] = ()


def _ev(kind: str, record_id: str, part: str, at: datetime) -> Evidence:
    rtype = "MedicationAdministration" if part == ADMINISTRATION_PART else "Observation"
    return Evidence(kind, record_id, part, rtype, at)


def _episodes(rule: Rule, patient: PatientRef, points: Iterable[_Point]) -> list[Signal]:
    out: list[Signal] = []
    opener: _Point | None = None
    evidence: list[Evidence] = []

    def close(status: str, at: datetime | None, by: str | None) -> None:
        assert opener is not None
        seen: dict[tuple[str, str, str], Evidence] = {}
        for e in evidence:
            seen.setdefault((e.kind, e.record_id, e.part), e)
        out.append(
            Signal(
                rule=rule,
                key=f"{rule.id}:{opener.kind}:{opener.record_id}",
                patient=patient,
                status=status,
                opened_at=opener.at,
                resolved_at=at,
                resolved_by=by,
                evidence=tuple(seen.values()),
            )
        )

    for point in points:
        if point.present is None:
            continue
        if point.present:
            if opener is None:
                opener, evidence = point, []
            evidence.extend(point.evidence)
        elif opener is not None:
            close(RESOLVED, point.at, f"{point.kind}/{point.record_id}")
            opener = None
    if opener is not None:
        close(ACTIVE, None, None)
    return out


def _symptom_at_least(
    entry: DiaryEntry, names: Sequence[str], severities: Sequence[str]
) -> list[str]:
    return [
        s.symptom.value
        for s in entry.symptoms
        if s.symptom.value in names and s.severity.value in severities
    ]


def _danger_sign(rule: Rule, entries: Sequence[DiaryEntry]) -> Iterable[_Point]:
    items, item_min = rule.param("mg_adl_items"), rule.param("mg_adl_item_min")
    symptoms, severities = rule.param("symptoms"), rule.param("symptom_severities")
    for e in entries:
        evidence = []
        if e.mg_adl is not None and any(getattr(e.mg_adl, i) >= item_min for i in items):
            evidence.append(_ev(DIARY_ENTRY, e.entry_id, MG_ADL_PART, e.recorded_at))
        for name in _symptom_at_least(e, symptoms, severities):
            evidence.append(_ev(DIARY_ENTRY, e.entry_id, SYMPTOM_PREFIX + name, e.recorded_at))
        # Safety first: only a full MG-ADL without the sign can resolve it.
        present = True if evidence else (False if e.mg_adl is not None else None)
        yield _Point(e.recorded_at, DIARY_ENTRY, e.entry_id, present, tuple(evidence))


def _worsening(rule: Rule, entries: Sequence[DiaryEntry]) -> Iterable[_Point]:
    points, needed = rule.param("points_above_baseline"), rule.param("consecutive_entries")
    days, min_n = rule.param("baseline_days"), rule.param("min_baseline_entries")
    scored = [(e, e.mg_adl.total) for e in entries if e.mg_adl is not None]
    times = [e.recorded_at for e, _ in scored]
    totals = [t for _, t in scored]
    run: list[tuple[DiaryEntry, int]] = []
    baseline: float | None = None  # frozen when a run starts: recovery means back to it
    first = 0  # the oldest entry inside the baseline window (entries are in time order)
    for i, (entry, total) in enumerate(scored):
        since = entry.recorded_at - timedelta(days=days)
        while scored[first][0].recorded_at < since:
            first += 1
        if baseline is None:
            # Entries strictly before this one (same-time entries are not its baseline).
            prior = totals[first : bisect.bisect_left(times, entry.recorded_at, first, i)]
            if len(prior) < min_n:
                yield _Point(entry.recorded_at, DIARY_ENTRY, entry.entry_id, None)
                continue
            candidate = median(prior)
            if total < candidate + points:
                yield _Point(entry.recorded_at, DIARY_ENTRY, entry.entry_id, False)
                continue
            baseline = candidate
        if total >= baseline + points:
            run.append((entry, total))
            if len(run) < needed:
                yield _Point(entry.recorded_at, DIARY_ENTRY, entry.entry_id, None)
                continue
            # The run is evidence; the signal opens at the entry that confirms it.
            evidence = tuple(
                _ev(DIARY_ENTRY, e.entry_id, MG_ADL_PART, e.recorded_at) for e, _ in run
            )
            run = run[-1:]  # already handed on: later entries add only themselves
            yield _Point(entry.recorded_at, DIARY_ENTRY, entry.entry_id, True, evidence)
        else:
            run, baseline = [], None
            yield _Point(entry.recorded_at, DIARY_ENTRY, entry.entry_id, False)


def _infusion_reaction(
    rule: Rule, entries: Sequence[DiaryEntry], infusions: Sequence[InfusionRecord]
) -> Iterable[_Point]:
    hours, fever = rule.param("window_hours"), rule.param("fever_celsius")
    severities, symptoms = rule.param("reaction_severities"), rule.param("diary_symptoms")
    given = [i for i in infusions if i.status in GIVEN]
    times = [e.recorded_at for e in entries]
    points: list[_Point] = []
    for n, inf in enumerate(given):
        window_end = (inf.end or inf.start) + timedelta(hours=hours)
        # Each diary entry belongs to the latest infusion started before it, so the days of a
        # multi-day course do not report one fever several times.
        next_start = given[n + 1].start if n + 1 < len(given) else None
        administration = _ev(INFUSION, inf.infusion_id, ADMINISTRATION_PART, inf.start)
        for index, reaction in enumerate(inf.adverse_reactions):
            if reaction.severity.value in severities and inf.start <= reaction.onset <= window_end:
                part = f"{REACTION_PREFIX}{index}"
                points.append(
                    _Point(
                        reaction.onset,
                        INFUSION,
                        inf.infusion_id,
                        True,
                        (administration, _ev(INFUSION, inf.infusion_id, part, reaction.onset)),
                    )
                )
        low = bisect.bisect_left(times, inf.start)
        high = bisect.bisect_left(times, next_start) if next_start else len(entries)
        for e in entries[low:high]:
            in_window = e.recorded_at <= window_end
            evidence = []
            temp = e.vitals.body_temperature_c if e.vitals else None
            if in_window and temp is not None and temp >= fever:
                evidence.append(_ev(DIARY_ENTRY, e.entry_id, TEMPERATURE_PART, e.recorded_at))
            if in_window:
                for name in _symptom_at_least(e, symptoms, severities):
                    evidence.append(
                        _ev(DIARY_ENTRY, e.entry_id, SYMPTOM_PREFIX + name, e.recorded_at)
                    )
            if evidence:
                points.append(
                    _Point(
                        e.recorded_at, DIARY_ENTRY, e.entry_id, True, (administration, *evidence)
                    )
                )
            else:
                points.append(_Point(e.recorded_at, DIARY_ENTRY, e.entry_id, False))
    points.sort(key=lambda p: (p.at, p.present is False))
    return points


def _flare_up(rule: Rule, entries: Sequence[DiaryEntry]) -> Iterable[_Point]:
    del rule  # no threshold: the patient's own report
    for e in entries:
        evidence = (_ev(DIARY_ENTRY, e.entry_id, FLARE_UP_PART, e.recorded_at),)
        yield _Point(e.recorded_at, DIARY_ENTRY, e.entry_id, e.flare_up is True, evidence)


def _courses(infusions: Sequence[InfusionRecord], days: float) -> list[list[InfusionRecord]]:
    courses: list[list[InfusionRecord]] = []
    for inf in infusions:
        if inf.status not in GIVEN:
            continue
        if courses and inf.start - courses[-1][0].start < timedelta(days=days):
            courses[-1].append(inf)
        else:
            courses.append([inf])
    return courses


def _wear_off(
    rule: Rule, entries: Sequence[DiaryEntry], infusions: Sequence[InfusionRecord]
) -> Iterable[_Point]:
    cycles_needed, points = rule.param("cycles"), rule.param("points")
    late_days = rule.param("late_days")
    lo, hi = rule.param("mid_start_fraction"), rule.param("mid_end_fraction")
    scored = [(e, e.mg_adl.total) for e in entries if e.mg_adl is not None]
    times = [e.recorded_at for e, _ in scored]

    def between(low: datetime, high: datetime) -> list[tuple[DiaryEntry, int]]:
        # Entries with low <= time < high, by bisection (time order): cheap on long histories.
        return scored[bisect.bisect_left(times, low) : bisect.bisect_left(times, high)]

    courses = _courses(infusions, rule.param("course_days"))
    # Per complete cycle (end of one course -> start of the next): wear-off shown?, evidence.
    cycles: list[tuple[bool | None, tuple[Evidence, ...], InfusionRecord]] = []
    for course, following in itertools.pairwise(courses):
        last = course[-1]
        start, nxt = last.end or last.start, following[0].start
        length = nxt - start
        mid = [t for _, t in between(start + length * lo, start + length * hi)]
        late_entries = between(nxt - timedelta(days=late_days), nxt)
        if not mid or not late_entries:
            cycles.append((None, (), following[0]))
            continue
        shown = mean(t for _, t in late_entries) - mean(mid) >= points
        evidence = (
            *tuple(
                _ev(DIARY_ENTRY, e.entry_id, MG_ADL_PART, e.recorded_at) for e, _ in late_entries
            ),
            _ev(INFUSION, following[0].infusion_id, ADMINISTRATION_PART, nxt),
        )
        cycles.append((shown, evidence, following[0]))
    for k in range(cycles_needed - 1, len(cycles)):
        window = cycles[k - cycles_needed + 1 : k + 1]
        closing = cycles[k][2]
        states = [s for s, _, _ in window]
        present = None if None in states else all(states)
        evidence = tuple(e for _, ev, _ in window for e in ev)
        yield _Point(closing.start, INFUSION, closing.infusion_id, present, evidence)


def evaluate(records: Iterable[Record], rules: RuleSet | None = None) -> list[Signal]:
    """Every signal episode in one patient's history, oldest first (active and resolved)."""
    rules = rules or default_rules()
    entries: list[DiaryEntry] = []
    infusions: list[InfusionRecord] = []
    patient: PatientRef | None = None
    for record in records:
        if patient is None:
            patient = record.patient
        elif record.patient != patient:
            raise ValueError("evaluate() takes the records of one patient")
        if isinstance(record, DiaryEntry):
            entries.append(record)
        else:
            infusions.append(record)
    if patient is None:
        return []
    entries.sort(key=lambda e: (e.recorded_at, e.entry_id))
    infusions.sort(key=lambda i: (i.start, i.infusion_id))
    out: list[Signal] = []
    for rule in rules.enabled():
        if rule.id == "danger_sign":
            points = _danger_sign(rule, entries)
        elif rule.id == "worsening":
            points = _worsening(rule, entries)
        elif rule.id == "infusion_reaction":
            points = _infusion_reaction(rule, entries, infusions)
        elif rule.id == "flare_up":
            points = _flare_up(rule, entries)
        else:
            points = _wear_off(rule, entries, infusions)
        out.extend(_episodes(rule, patient, points))
    out.sort(key=lambda s: (s.opened_at, s.rule.id))
    return out
