"""The clinician's report as data: series over time, infusion spans, reactions, infusion cycles.

Pure: records in, plain values out (no FHIR, no Flask, no drawing), so each step is testable.

Times are plotted in the patient's own offset, per entry: each value sits at the wall-clock time
its record carries (`recorded_at`, an infusion's start/end, a reaction's onset, each with its own
offset). That puts an evening entry on the day the patient lived it, also across a DST change or
a journey, where one offset for the whole period (even the latest) would move some entries to the
neighbouring day. Instants (days to the next infusion) are still compared as instants.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from statistics import fmean

from mappings import items
from mappings.records import DiaryEntry, InfusionRecord, InfusionStatus, Symptom
from mappings.signals import Signal

RATINGS = items.RATINGS  # the 0-10 ratings of a diary entry: the item table's rating series
DEFAULT_SYMPTOMS = RATINGS
SEVERITY_SCORE = {"mild": 1, "moderate": 2, "severe": 3}
# Days before the next infusion start, as [low, high) bins: does the patient wear off?
CYCLE_BINS: tuple[tuple[float, float | None, str], ...] = (
    (0, 3, "0-2 days"),
    (3, 7, "3-6 days"),
    (7, 14, "7-13 days"),
    (14, None, "14+ days"),
)
SECONDS_PER_DAY = 86400.0
# The danger signs of MG (a myasthenic crisis starts with breathing or swallowing failing): always
# shown, whatever `?symptoms=` asks for. MG-ADL items are 0-3; symptom severities 1 mild-3 severe.
DANGER_ITEMS = ("breathing", "swallowing")  # MG-ADL items
DANGER_SYMPTOMS = ("shortness_of_breath", "trouble_swallowing")
DANGER_MAX = 3


class UnknownSymptom(ValueError):
    """A symptom name the report cannot chart."""


def chartable_symptoms() -> tuple[str, ...]:
    """Every name `?symptoms=` accepts: the two 0-10 ratings and the named symptoms."""
    return RATINGS + tuple(s.value for s in Symptom)


def parse_symptoms(text: str) -> tuple[str, ...]:
    """A comma-separated list of chartable names, in the order given, without repeats."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in chartable_symptoms()]
    if unknown:
        raise UnknownSymptom(
            f"unknown: {', '.join(unknown)}; choose from {', '.join(chartable_symptoms())}"
        )
    return names


def local_time(at: datetime) -> datetime:
    """The wall-clock time the patient saw, in the offset `at` was recorded with (naive)."""
    return at.replace(tzinfo=None)


@dataclass(frozen=True)
class Point:
    """One value at one time (`at` keeps the recorded offset)."""

    at: datetime
    value: float

    @property
    def local(self) -> datetime:
        """Where the chart puts it: the patient's wall-clock time."""
        return local_time(self.at)

    @property
    def day(self) -> date:
        """The patient's own calendar day of the value."""
        return self.local.date()


@dataclass(frozen=True)
class Series:
    """A named line of the chart and the scale it is on."""

    name: str
    label: str
    points: tuple[Point, ...]
    scale_max: int


@dataclass(frozen=True)
class InfusionSpan:
    """An infusion from start to end (end None: still running or not recorded)."""

    start: datetime
    end: datetime | None
    status: InfusionStatus
    product: str | None
    dose_g: float


@dataclass(frozen=True)
class ReactionMark:
    """An adverse reaction to an infusion ('IVIG flu'), at its onset."""

    onset: datetime
    symptom: str
    severity: str
    infusion_start: datetime


@dataclass(frozen=True)
class SignalMark:
    """A care-team signal (a prompt for review, not a diagnosis) from its opening to resolution."""

    rule: str
    title: str
    text: str
    severity: str
    alarm: bool
    active: bool
    opened_at: datetime
    resolved_at: datetime | None


def signal_marks(signals: Sequence[Signal]) -> tuple[SignalMark, ...]:
    """Active signals first, then alarms before information, high severity first, newest first."""
    marks = [
        SignalMark(
            s.rule.id,
            s.rule.title,
            s.rule.text,
            s.rule.severity,
            s.rule.alarm,
            s.active,
            s.opened_at,
            s.resolved_at,
        )
        for s in signals
    ]
    marks.sort(key=lambda m: m.opened_at, reverse=True)
    rank = {"high": 0, "moderate": 1, "low": 2}
    marks.sort(key=lambda m: (not m.active, not m.alarm, rank.get(m.severity, 3)))
    return tuple(marks)


@dataclass(frozen=True)
class DangerRow:
    """An entry that recorded a breathing or swallowing problem (a value above 0), with every
    danger value it recorded (series name -> value)."""

    at: datetime
    values: dict[str, float]


@dataclass(frozen=True)
class CycleRow:
    """Mean scores of the entries recorded some days before the next infusion."""

    label: str
    entries: int
    means: dict[str, float | None]


@dataclass(frozen=True)
class ReportData:
    """Everything the chart and the page show."""

    mg_adl: Series
    ratings: tuple[Series, ...]  # 0-10 ratings
    severities: tuple[Series, ...]  # named symptoms, 1 mild - 3 severe
    danger: tuple[Series, ...]  # breathing and swallowing, always
    danger_rows: tuple[DangerRow, ...]  # entries with any danger value above 0
    flare_days: tuple[date, ...]  # the patient's own days with a reported flare-up
    infusions: tuple[InfusionSpan, ...]
    reactions: tuple[ReactionMark, ...]
    cycle: tuple[CycleRow, ...]
    entry_count: int
    since: datetime | None
    until: datetime | None
    signals: tuple[SignalMark, ...] = ()  # prompts for the care team, shown first

    @property
    def active_signals(self) -> tuple[SignalMark, ...]:
        """The signals that still hold."""
        return tuple(m for m in self.signals if m.active)

    # The latest entry's offset: the one the window limits are shown in.
    offset: tzinfo | None = None

    @property
    def offset_text(self) -> str:
        """The latest recorded offset as +hh:mm (UTC when nothing was recorded)."""
        delta = self.offset.utcoffset(None) if self.offset is not None else None
        if delta is None:
            return "UTC"
        sign = "-" if delta < timedelta(0) else "+"
        minutes = abs(int(delta.total_seconds())) // 60
        return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def rating_series(entries: Sequence[DiaryEntry], name: str) -> Series:
    """A 0-10 rating over time; entries that did not record it are left out (not zero)."""
    points = tuple(
        Point(e.recorded_at, float(getattr(e, name)))
        for e in entries
        if getattr(e, name) is not None
    )
    return Series(name, f"{_label(name)} (0-10)", points, 10)


def severity_series(entries: Sequence[DiaryEntry], name: str) -> Series:
    """A named symptom's severity (1 mild, 2 moderate, 3 severe) where it was recorded."""
    points = tuple(
        Point(e.recorded_at, float(SEVERITY_SCORE[rating.severity.value]))
        for e in entries
        for rating in e.symptoms
        if rating.symptom.value == name
    )
    return Series(name, f"{_label(name)} (1 mild - 3 severe)", points, 3)


def mg_adl_series(entries: Sequence[DiaryEntry]) -> Series:
    """The MG-ADL total (0-24) of every entry that recorded the scale."""
    points = tuple(Point(e.recorded_at, float(e.mg_adl.total)) for e in entries if e.mg_adl)
    return Series("mg_adl_total", "MG-ADL total (0-24)", points, 24)


def mg_adl_item_series(entries: Sequence[DiaryEntry], item: str) -> Series:
    """One MG-ADL item (0-3) of every entry that recorded the scale."""
    points = tuple(
        Point(e.recorded_at, float(getattr(e.mg_adl, item))) for e in entries if e.mg_adl
    )
    return Series(f"mg_adl_{item}", f"MG-ADL {item} (0-3)", points, DANGER_MAX)


def danger_series(entries: Sequence[DiaryEntry]) -> tuple[Series, ...]:
    """Breathing and swallowing: the MG-ADL items and the symptom ratings, always all four."""
    return (
        *(mg_adl_item_series(entries, item) for item in DANGER_ITEMS),
        *(severity_series(entries, name) for name in DANGER_SYMPTOMS),
    )


def danger_rows(series: Sequence[Series]) -> tuple[DangerRow, ...]:
    """The entries (by time) where any danger series is above 0, with all their danger values."""
    rows: dict[datetime, dict[str, float]] = {}
    for item in series:
        for point in item.points:
            rows.setdefault(point.at, {})[item.name] = point.value
    return tuple(
        DangerRow(at, values)
        for at, values in sorted(rows.items())
        if any(v > 0 for v in values.values())
    )


def flare_days(entries: Sequence[DiaryEntry]) -> tuple[date, ...]:
    """The patient's own days on which an entry reported a flare-up, in order."""
    return tuple(sorted({local_time(e.recorded_at).date() for e in entries if e.flare_up}))


def given_infusions(infusions: Sequence[InfusionRecord]) -> list[InfusionRecord]:
    """Infusions that were (at least partly) given, by start; not-done ones are left out."""
    given = [i for i in infusions if i.status is not InfusionStatus.NOT_DONE]
    return sorted(given, key=lambda i: i.start)


def days_to_next_infusion(at: datetime, starts: Sequence[datetime]) -> float | None:
    """Days from `at` to the first infusion start after it (starts sorted), None if none."""
    index = bisect.bisect_right(starts, at)
    if index == len(starts):
        return None
    return (starts[index] - at).total_seconds() / SECONDS_PER_DAY


def cycle_bin(days: float) -> str:
    """The label of the days-before-next-infusion bin `days` falls in."""
    for low, high, label in CYCLE_BINS:
        if days >= low and (high is None or days < high):
            return label
    raise ValueError("days before an infusion cannot be negative")


def cycle_table(
    entries: Sequence[DiaryEntry], infusions: Sequence[InfusionRecord], names: Sequence[str]
) -> tuple[CycleRow, ...]:
    """Mean MG-ADL total and chosen scores per bin of days before the next infusion."""
    starts = [i.start for i in given_infusions(infusions)]
    columns = ("mg_adl_total", *names)
    values: dict[str, dict[str, list[float]]] = {
        label: {c: [] for c in columns} for _, _, label in CYCLE_BINS
    }
    counts = dict.fromkeys(values, 0)
    for entry in entries:
        days = days_to_next_infusion(entry.recorded_at, starts)
        if days is None:
            continue
        label = cycle_bin(days)
        counts[label] += 1
        for column, value in _scores(entry, columns).items():
            values[label][column].append(value)
    return tuple(
        CycleRow(
            label,
            counts[label],
            {c: (round(fmean(v), 1) if v else None) for c, v in values[label].items()},
        )
        for _, _, label in CYCLE_BINS
    )


def _scores(entry: DiaryEntry, columns: Sequence[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for column in columns:
        if column == "mg_adl_total":
            if entry.mg_adl is not None:
                scores[column] = float(entry.mg_adl.total)
        elif column in RATINGS:
            value = getattr(entry, column)
            if value is not None:
                scores[column] = float(value)
        else:
            for rating in entry.symptoms:
                if rating.symptom.value == column:
                    scores[column] = float(SEVERITY_SCORE[rating.severity.value])
    return scores


def _overlaps(
    start: datetime, end: datetime | None, since: datetime | None, until: datetime | None
) -> bool:
    return (until is None or start < until) and (since is None or (end or start) >= since)


def _severities(entries: Sequence[DiaryEntry], names: Sequence[str]) -> tuple[Series, ...]:
    # The danger symptoms are drawn in their own panel already.
    shown = [n for n in names if n not in RATINGS and n not in DANGER_SYMPTOMS]
    return tuple(severity_series(entries, n) for n in shown)


def _reaction_marks(shown: Sequence[InfusionRecord]) -> tuple[ReactionMark, ...]:
    marks = (
        ReactionMark(r.onset, r.symptom.value, r.severity.value, i.start)
        for i in shown
        for r in i.adverse_reactions
    )
    return tuple(sorted(marks, key=lambda m: m.onset))


def build_report(
    entries: Sequence[DiaryEntry],
    infusions: Sequence[InfusionRecord],
    names: Sequence[str] = DEFAULT_SYMPTOMS,
    since: datetime | None = None,
    until: datetime | None = None,
    signals: Sequence[Signal] = (),
) -> ReportData:
    """The report of the entries in the window; infusions are all the patient's, so the days
    to the next infusion are right at the window's end too."""
    entries = sorted(entries, key=lambda e: e.recorded_at)
    shown = [i for i in given_infusions(infusions) if _overlaps(i.start, i.end, since, until)]
    danger = danger_series(entries)
    return ReportData(
        mg_adl=mg_adl_series(entries),
        ratings=tuple(rating_series(entries, n) for n in names if n in RATINGS),
        severities=_severities(entries, names),
        danger=danger,
        danger_rows=danger_rows(danger),
        flare_days=flare_days(entries),
        infusions=tuple(
            InfusionSpan(i.start, i.end, i.status, i.product.brand, i.dose_g) for i in shown
        ),
        reactions=_reaction_marks(shown),
        cycle=cycle_table(entries, infusions, names),
        entry_count=len(entries),
        since=since,
        until=until,
        signals=signal_marks(
            [s for s in signals if s.active or _overlaps(s.opened_at, s.resolved_at, since, until)]
        ),
        offset=entries[-1].recorded_at.tzinfo if entries else None,
    )
