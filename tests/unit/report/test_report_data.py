"""Chart data preparation: series, days to the next infusion, the infusion-cycle table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mappings.records import (
    AdverseReaction,
    DiaryEntry,
    InfusionRecord,
    InfusionStatus,
    MgAdl,
    PatientRef,
    Product,
    Severity,
    Symptom,
    SymptomRating,
)
from service.report import (
    UnknownSymptom,
    build_report,
    cycle_table,
    days_to_next_infusion,
    parse_symptoms,
)
from service.report.data import cycle_bin, given_infusions

PATIENT = PatientRef(reference="Patient/synthetic-report-1")
T0 = datetime(2026, 10, 1, 20, 0, tzinfo=UTC)


def adl(total: int) -> MgAdl:
    """An MG-ADL whose items add up to `total` (0-24)."""
    items = [min(3, max(0, total - 3 * i)) for i in range(8)]
    return MgAdl(*items)


def entry(day: float, **parts: object) -> DiaryEntry:
    return DiaryEntry(
        entry_id=f"e-{day}", patient=PATIENT, recorded_at=T0 + timedelta(days=day), **parts
    )


def infusion(day: float, hours: float = 5, status: InfusionStatus = InfusionStatus.COMPLETED,
             reactions: tuple[AdverseReaction, ...] = ()) -> InfusionRecord:  # fmt: skip
    start = T0 + timedelta(days=day)
    return InfusionRecord(
        infusion_id=f"i-{day}",
        patient=PATIENT,
        product=Product(brand="Privigen"),
        dose_g=70.0,
        start=start,
        end=start + timedelta(hours=hours) if status is not InfusionStatus.NOT_DONE else None,
        status=status,
        status_reason="declined" if status is InfusionStatus.NOT_DONE else None,
        adverse_reactions=reactions,
    )


def test_days_to_next_infusion_is_to_the_first_start_after_the_entry() -> None:
    starts = [T0 + timedelta(days=7), T0 + timedelta(days=28)]
    assert days_to_next_infusion(T0, starts) == 7.0
    assert days_to_next_infusion(T0 + timedelta(days=6, hours=12), starts) == 0.5
    # at the very start of an infusion, the next one is the following infusion
    assert days_to_next_infusion(T0 + timedelta(days=7), starts) == 21.0
    assert days_to_next_infusion(T0 + timedelta(days=29), starts) is None
    assert days_to_next_infusion(T0, []) is None


def test_days_to_next_infusion_compares_instants_across_offsets() -> None:
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2026, 10, 8, 9, 0, tzinfo=plus_two)  # 07:00 UTC
    at = datetime(2026, 10, 7, 7, 0, tzinfo=UTC)
    assert days_to_next_infusion(at, [start]) == 1.0


@pytest.mark.parametrize(
    ("days", "label"),
    [(0, "0-2 days"), (2.99, "0-2 days"), (3, "3-6 days"), (6.5, "3-6 days"), (7, "7-13 days"),
     (13.9, "7-13 days"), (14, "14+ days"), (40, "14+ days")],
)  # fmt: skip
def test_cycle_bins_are_half_open(days: float, label: str) -> None:
    assert cycle_bin(days) == label


def test_cycle_table_shows_wearing_off_before_the_next_infusion() -> None:
    # Infusions every 21 days; scores rise as the next one approaches.
    infusions = [infusion(0), infusion(21), infusion(42)]
    entries = [
        entry(d + 0.5, mg_adl=adl(2 + d // 3), fatigue=min(10, d // 2)) for d in range(0, 42)
    ]
    rows = {row.label: row for row in cycle_table(entries, infusions, ["fatigue"])}
    assert sum(row.entries for row in rows.values()) == 42
    # 21-day cycle: days-before values 20.5 .. 0.5 each occur twice
    assert rows["0-2 days"].entries == 6
    assert rows["14+ days"].entries == 14
    near, far = rows["0-2 days"].means, rows["14+ days"].means
    assert near["mg_adl_total"] is not None and far["mg_adl_total"] is not None
    assert near["mg_adl_total"] > far["mg_adl_total"]
    assert near["fatigue"] is not None and far["fatigue"] is not None
    assert near["fatigue"] > far["fatigue"]


def test_cycle_table_means_only_what_was_recorded() -> None:
    entries = [entry(1, fatigue=4), entry(1.5, mg_adl=adl(6)), entry(2, fatigue=8)]
    rows = {row.label: row for row in cycle_table(entries, [infusion(10)], ["fatigue"])}
    assert rows["7-13 days"].entries == 3
    assert rows["7-13 days"].means == {"mg_adl_total": 6.0, "fatigue": 6.0}
    assert rows["0-2 days"].means == {"mg_adl_total": None, "fatigue": None}


def test_entries_after_the_last_infusion_are_not_in_the_cycle_table() -> None:
    rows = cycle_table([entry(5, fatigue=3)], [infusion(0)], ["fatigue"])
    assert sum(row.entries for row in rows) == 0


def test_not_done_infusions_are_neither_drawn_nor_counted_as_the_next_infusion() -> None:
    infusions = [infusion(10, status=InfusionStatus.NOT_DONE), infusion(20)]
    assert [i.start for i in given_infusions(infusions)] == [T0 + timedelta(days=20)]
    rows = {r.label: r for r in cycle_table([entry(9, fatigue=5)], infusions, ["fatigue"])}
    assert rows["7-13 days"].entries == 1  # 11 days to the one given on day 20
    data = build_report([entry(9, fatigue=5)], infusions)
    assert [span.start for span in data.infusions] == [T0 + timedelta(days=20)]


def test_build_report_series_skip_unrecorded_values_and_keep_time_order() -> None:
    entries = [
        entry(3, fatigue=7, muscle_weakness=2),
        entry(1, mg_adl=adl(9), fatigue=4),
        entry(2, symptoms=(SymptomRating(Symptom.PTOSIS, Severity.SEVERE),)),
    ]
    data = build_report(entries, [], ["fatigue", "ptosis"])
    assert [(p.at, p.value) for p in data.mg_adl.points] == [(T0 + timedelta(days=1), 9.0)]
    assert [s.name for s in data.ratings] == ["fatigue"]
    assert [p.value for p in data.ratings[0].points] == [4.0, 7.0]
    assert [s.name for s in data.severities] == ["ptosis"]
    assert [p.value for p in data.severities[0].points] == [3.0]
    assert data.entry_count == 3


def test_reactions_are_marked_at_onset_with_their_infusion() -> None:
    onset = T0 + timedelta(days=1, hours=3)
    reactions = (
        AdverseReaction(Symptom.HEADACHE, Severity.MODERATE, onset),
        AdverseReaction(Symptom.FEVER, Severity.MILD, onset - timedelta(hours=2)),
    )
    data = build_report([], [infusion(1, reactions=reactions)])
    assert [(m.onset, m.symptom, m.severity) for m in data.reactions] == [
        (onset - timedelta(hours=2), "fever", "mild"),
        (onset, "headache", "moderate"),
    ]
    assert all(m.infusion_start == T0 + timedelta(days=1) for m in data.reactions)


def test_only_infusions_overlapping_the_window_are_drawn() -> None:
    infusions = [infusion(0, hours=30), infusion(10), infusion(40)]
    since, until = T0 + timedelta(days=1), T0 + timedelta(days=20)
    data = build_report([entry(5, fatigue=3)], infusions, since=since, until=until)
    # the first still runs into the window (30 h), the third starts after it
    assert [span.start for span in data.infusions] == [T0, T0 + timedelta(days=10)]
    # yet the cycle table knows the next infusion after the window's last entry
    assert sum(row.entries for row in data.cycle) == 1


def test_parse_symptoms_keeps_order_drops_repeats_and_names_unknown_ones() -> None:
    assert parse_symptoms("muscle_weakness, fatigue,fatigue") == ("muscle_weakness", "fatigue")
    assert parse_symptoms("headache") == ("headache",)
    with pytest.raises(UnknownSymptom, match="tiredness"):
        parse_symptoms("fatigue,tiredness")
