"""Chart data preparation: series, days to the next infusion, the infusion-cycle table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

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


MINUS_FIVE = timezone(timedelta(hours=-5))
MINUS_FOUR = timezone(timedelta(hours=-4))


def at_entry(when: datetime, entry_id: str, **parts: object) -> DiaryEntry:
    return DiaryEntry(entry_id=entry_id, patient=PATIENT, recorded_at=when, **parts)


def test_an_evening_entry_is_on_the_patients_own_day_not_the_utc_day() -> None:
    # 21:00 at -05:00 is 02:00 UTC on Nov 4: the patient wrote it on the evening of Nov 3.
    evening = datetime.fromisoformat("2026-11-03T21:00:00-05:00")
    data = build_report([at_entry(evening, "e1", mg_adl=adl(7), flare_up=True)], [])
    (point,) = data.mg_adl.points
    assert point.day == date(2026, 11, 3)
    assert point.local == datetime(2026, 11, 3, 21, 0)
    assert point.at == evening  # the instant and its offset are kept
    assert data.flare_days == (date(2026, 11, 3),)
    assert data.offset_text == "UTC-05:00"


def test_each_entry_keeps_its_own_offset_across_a_dst_change() -> None:
    # New York: -04:00 until Nov 1 2026, -05:00 after. With one offset for the whole period (the
    # latest, -05:00), the 00:30 entry of Oct 30 would move to Oct 29.
    entries = [
        at_entry(datetime(2026, 10, 30, 0, 30, tzinfo=MINUS_FOUR), "a", fatigue=3),
        at_entry(datetime(2026, 11, 3, 23, 45, tzinfo=MINUS_FIVE), "b", fatigue=5),
    ]
    data = build_report(entries, [])
    assert [p.day for p in data.ratings[0].points] == [date(2026, 10, 30), date(2026, 11, 3)]
    assert data.offset_text == "UTC-05:00"  # the latest entry's, used for the window limits


def test_flare_days_are_the_days_a_flare_up_was_reported_once_each() -> None:
    entries = [
        entry(0, flare_up=True),
        entry(0.1, flare_up=True),  # same day (UTC entries: 20:00 and 22:24)
        entry(1, flare_up=False),
        entry(2),
        entry(3, flare_up=True),
    ]
    data = build_report(entries, [])
    assert data.flare_days == (date(2026, 10, 1), date(2026, 10, 4))
    assert build_report([entry(1, flare_up=False)], []).flare_days == ()


def adl_with(breathing: int, swallowing: int) -> MgAdl:
    return MgAdl(1, 0, swallowing, breathing, 0, 1, 2, 1)


def test_breathing_and_swallowing_are_in_the_report_without_asking() -> None:
    entries = [
        entry(0, mg_adl=adl_with(0, 0), fatigue=2),
        entry(1, mg_adl=adl_with(2, 1),
              symptoms=(SymptomRating(Symptom.SHORTNESS_OF_BREATH, Severity.SEVERE),)),
        entry(2, symptoms=(SymptomRating(Symptom.TROUBLE_SWALLOWING, Severity.MILD),)),
    ]  # fmt: skip
    data = build_report(entries, [])  # default symptoms: fatigue, muscle weakness
    danger = {s.name: [(p.day.day, p.value) for p in s.points] for s in data.danger}
    assert danger == {
        "mg_adl_breathing": [(1, 0.0), (2, 2.0)],
        "mg_adl_swallowing": [(1, 0.0), (2, 1.0)],
        "shortness_of_breath": [(2, 3.0)],
        "trouble_swallowing": [(3, 1.0)],
    }
    # the entries a clinician must look at: above 0 somewhere, every danger value recorded
    assert [(r.at, r.values) for r in data.danger_rows] == [
        (T0 + timedelta(days=1),
         {"mg_adl_breathing": 2.0, "mg_adl_swallowing": 1.0, "shortness_of_breath": 3.0}),
        (T0 + timedelta(days=2), {"trouble_swallowing": 1.0}),
    ]  # fmt: skip


def test_the_danger_series_are_there_even_when_nothing_was_recorded() -> None:
    data = build_report([], [])
    assert [s.name for s in data.danger] == [
        "mg_adl_breathing", "mg_adl_swallowing", "shortness_of_breath", "trouble_swallowing",
    ]  # fmt: skip
    assert all(not s.points for s in data.danger) and data.danger_rows == ()


def test_asking_for_a_danger_symptom_does_not_draw_it_twice() -> None:
    rating = SymptomRating(Symptom.SHORTNESS_OF_BREATH, Severity.MODERATE)
    data = build_report([entry(0, symptoms=(rating,))], [], ["shortness_of_breath", "ptosis"])
    assert [s.name for s in data.severities] == ["ptosis"]
    assert "shortness_of_breath" in data.cycle[0].means  # still in the cycle table
