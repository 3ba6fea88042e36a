"""Incremental evaluation: after records arrive, evaluate only the part of the history that can
change, and keep the stored signals from before it.

The rules' evidence windows bound what a new record can change: a danger sign or a flare-up
looks at one entry, a reaction at the 72 h after an infusion, worsening at the baseline days
before an entry. So the episodes from `since` (the oldest accepted record, moved back to the
first evidence of any signal still open or touched by the batch) are evaluated again, reading
records from `since - lookback`; older episodes are kept as stored. Wear-off spans whole infusion
cycles: it changes only when a cycle closes (an infusion arrives, or an entry lands before a
later infusion), and then the whole history is evaluated.

For entries made at least every `baseline_days` the result equals evaluate() over the whole
history (tests/unit/mappings/test_signals_window.py checks it on every synthetic course).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mappings.identifiers import DIARY_ENTRY, INFUSION
from mappings.records import DiaryEntry, InfusionRecord, Record
from mappings.signals.evaluate import GIVEN, Signal, evaluate
from mappings.signals.rules import Rule, RuleSet

# Rules whose evidence spans whole infusion cycles: evaluated over the whole history only.
WHOLE_HISTORY_RULES = frozenset({"wear_off"})


def record_time(record: Record) -> datetime:
    """When a record happened: a diary entry's recorded_at, an infusion's start."""
    return record.recorded_at if isinstance(record, DiaryEntry) else record.start


def record_ref(record: Record) -> tuple[str, str]:
    """(kind, id) of a record, as evidence names it."""
    if isinstance(record, DiaryEntry):
        return DIARY_ENTRY, record.entry_id
    return INFUSION, record.infusion_id


def rule_lookback(rule: Rule) -> timedelta:
    """How much history before an episode's first evidence this rule's evaluation reads."""
    if rule.id == "worsening":
        # The baseline of the entry that starts a run, and of the run's first entry.
        return timedelta(days=2 * rule.param("baseline_days"))
    if rule.id == "infusion_reaction":
        return timedelta(days=rule.param("window_hours") / 24 + 1)  # the infusion before
    return timedelta(0)  # danger sign, flare-up: each entry on its own


def lookback(rules: RuleSet) -> timedelta:
    """The longest lookback of the windowed rules that run: where the window's read starts."""
    windowed = [r for r in rules.enabled() if r.id not in WHOLE_HISTORY_RULES]
    return max((rule_lookback(r) for r in windowed), default=timedelta(0))


@dataclass(frozen=True)
class Window:
    """What to evaluate again: episodes opening at or after `since`, reading records from
    `start`; `earliest` is the oldest accepted record (an infusion after it closes a cycle)."""

    since: datetime
    start: datetime
    earliest: datetime


def _refs(signal: Signal) -> set[tuple[str, str]]:
    refs = {(e.kind, e.record_id) for e in signal.evidence}
    if signal.resolved_by:
        kind, _, record_id = signal.resolved_by.partition("/")
        refs.add((kind, record_id))
    return refs


def plan_window(
    stored: Sequence[Signal], accepted: Sequence[Record], rules: RuleSet
) -> Window | None:
    """The window the accepted records can change, or None: evaluate the whole history."""
    if not accepted:
        raise ValueError("plan_window() needs the accepted records")
    wear_off = any(r.enabled for r in rules.enabled() if r.id in WHOLE_HISTORY_RULES)
    if wear_off and any(isinstance(r, InfusionRecord) for r in accepted):
        return None  # a new or changed infusion may close a cycle
    earliest = min(record_time(r) for r in accepted)
    ids = {record_ref(r) for r in accepted}
    since = earliest
    candidates = [s for s in stored if s.rule.id not in WHOLE_HISTORY_RULES]
    moved = True
    while moved:  # until no open, later or touched episode starts before `since`
        moved = False
        for s in candidates:
            later = s.active or s.opened_at >= since or (s.resolved_at or since) >= since
            if later or _refs(s) & ids:
                first = min([s.opened_at, *(e.at for e in s.evidence)])
                if first < since:
                    since, moved = first, True
    return Window(since=since, start=since - lookback(rules), earliest=earliest)


def closes_a_cycle(window: Window, records: Iterable[Record], rules: RuleSet) -> bool:
    """Whether the window holds a given infusion after the oldest accepted record: then a
    wear-off cycle changed, and the whole history must be evaluated."""
    if not any(r.enabled for r in rules.enabled() if r.id in WHOLE_HISTORY_RULES):
        return False
    return any(
        isinstance(r, InfusionRecord) and r.status in GIVEN and r.start > window.earliest
        for r in records
    )


_groups: dict[str, tuple[tuple[timedelta, RuleSet], ...]] = {}


def _by_lookback(rules: RuleSet) -> tuple[tuple[timedelta, RuleSet], ...]:
    """The windowed rules grouped by lookback, each group as a rule set (kept per rule set)."""
    found = _groups.get(rules.fingerprint())
    if found is None:
        by_back: dict[timedelta, list[str]] = {}
        for rule in rules.enabled():
            if rule.id not in WHOLE_HISTORY_RULES:
                by_back.setdefault(rule_lookback(rule), []).append(rule.id)
        found = tuple(
            (back, rules.without(rid for rid in rules.rules if rid not in ids))
            for back, ids in sorted(by_back.items())
        )
        _groups[rules.fingerprint()] = found
    return found


def evaluate_window(
    stored: Sequence[Signal], records: Iterable[Record], window: Window, rules: RuleSet
) -> list[Signal]:
    """The patient's signals after new records: stored episodes before the window, and the
    window's records (those from window.start) evaluated again from window.since; each rule
    reads only its own lookback of them."""
    records = sorted(records, key=record_time)
    times = [record_time(r) for r in records]
    fresh: list[Signal] = []
    for back, only in _by_lookback(rules):
        first = bisect.bisect_left(times, window.since - back)
        fresh.extend(evaluate(records[first:], only))
    kept = [s for s in stored if s.rule.id in WHOLE_HISTORY_RULES or s.opened_at < window.since]
    out = kept + [s for s in fresh if s.opened_at >= window.since]
    out.sort(key=lambda s: (s.opened_at, s.rule.id))
    return out
