"""Incremental evaluation over a bounded window gives the same signals as the whole history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from mappings.records import Record
from mappings.signals import (
    Signal,
    closes_a_cycle,
    default_rules,
    evaluate,
    evaluate_window,
    plan_window,
    record_time,
    signal_from_json,
    signal_to_json,
)
from mappings.signals.window import lookback
from tests.unit.mappings.signal_courses import (
    PATIENT,
    bulbar_flare,
    entry,
    ivig_flu,
    recovery,
    stable,
    wear_off,
)

COURSES: dict[str, Callable[[], list[Record]]] = {
    "stable": stable,
    "wear_off": wear_off,
    "ivig_flu": ivig_flu,
    "bulbar_flare": bulbar_flare,
    "recovery": recovery,
}


def _replay(records: Sequence[Record], batch: int) -> tuple[list[Signal], int]:
    """Accept the records in time order, `batch` at a time, keeping only the stored signals
    (as JSON) between batches; returns the signals and how many batches read a window."""
    rules = default_rules()
    ordered = sorted(records, key=record_time)
    history: list[Record] = []
    stored: list[dict] = []
    windowed = 0
    for n in range(0, len(ordered), batch):
        accepted = ordered[n : n + batch]
        history.extend(accepted)
        before = [signal_from_json(s, PATIENT, rules) for s in stored]
        window = plan_window(before, accepted, rules)
        if window is not None:
            records_in = [r for r in history if record_time(r) >= window.start]
            if not closes_a_cycle(window, records_in, rules):
                windowed += 1
                after = evaluate_window(before, records_in, window, rules)
                stored = [signal_to_json(s) for s in after]
                continue
        stored = [signal_to_json(s) for s in evaluate(history, rules)]
    return [signal_from_json(s, PATIENT, rules) for s in stored], windowed


@pytest.mark.parametrize("name", sorted(COURSES))
@pytest.mark.parametrize("batch", [1, 3])
def test_replaying_a_course_gives_the_whole_history_signals(name: str, batch: int) -> None:
    records = COURSES[name]()
    signals, windowed = _replay(records, batch)
    assert signals == evaluate(records, default_rules())
    assert windowed > 0  # the window path ran, not only whole-history evaluations


def test_a_danger_sign_opens_and_a_later_entry_resolves_it_through_the_window() -> None:
    history = stable(30)
    rules = default_rules()
    stored = evaluate(history, rules)
    danger = entry(30.5, 6, breathing=2, swallowing=2)
    window = plan_window(stored, [danger], rules)
    assert window is not None and window.since == danger.recorded_at
    opened = evaluate_window(
        stored, [r for r in [*history, danger] if record_time(r) >= window.start], window, rules
    )
    assert [(s.rule.id, s.status) for s in opened if s.active] == [("danger_sign", "active")]
    calm = entry(31.5, 3)
    window = plan_window(opened, [calm], rules)
    # The open danger sign pulls the window back to its first evidence: the same key stays.
    assert window is not None and window.since == danger.recorded_at
    later = [*history, danger, calm]
    resolved = evaluate_window(
        opened, [r for r in later if record_time(r) >= window.start], window, rules
    )
    (sign,) = [s for s in resolved if s.rule.id == "danger_sign"]
    assert sign.status == "resolved" and sign.resolved_by == "diary-entry/D-31.5"
    assert resolved == evaluate(later, rules)


def test_the_window_reads_only_the_rules_lookback_of_a_long_history() -> None:
    rules = default_rules()
    history = stable(365)
    stored = evaluate(history, rules)
    new = replace(entry(365.5, 3), entry_id="new")
    window = plan_window(stored, [new], rules)
    assert window is not None
    assert window.start == new.recorded_at - lookback(rules)
    assert lookback(rules) == timedelta(days=28)  # twice the 14-day baseline
    read = [r for r in [*history, new] if record_time(r) >= window.start]
    assert len(read) < 40 < len(history)


def test_an_accepted_infusion_asks_for_the_whole_history() -> None:
    records = wear_off()
    infusions = [r for r in records if not hasattr(r, "entry_id")]
    assert plan_window([], infusions[-1:], default_rules()) is None


def test_stored_json_round_trips() -> None:
    signals = evaluate(bulbar_flare(), default_rules())
    assert signals
    again = [signal_from_json(signal_to_json(s), PATIENT, default_rules()) for s in signals]
    assert again == signals
