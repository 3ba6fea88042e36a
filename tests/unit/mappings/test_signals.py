"""Signal rules over synthetic courses: each rule fires where it should, and only there."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mappings.records import PatientRef, Severity, Symptom
from mappings.signals import RULE_IDS, default_rules, evaluate, with_overrides
from tests.unit.mappings.signal_courses import (
    PATIENT,
    bulbar_flare,
    entry,
    infusion,
    ivig_flu,
    recovery,
    stable,
    wear_off,
)


def _rules(signals: list) -> list[tuple[str, str]]:
    return [(s.rule.id, s.status) for s in signals]


def _parts(signal) -> set[tuple[str, str]]:
    return {(e.record_id, e.part) for e in signal.evidence}


def test_every_rule_has_a_cited_source_and_says_it_is_a_prompt_not_a_diagnosis() -> None:
    rules = default_rules()
    for rule_id in RULE_IDS:
        rule = rules.get(rule_id)
        assert "not a diagnosis" in rule.text and "not advice to the patient" in rule.text
        assert rule.title and rule.window
    assert "doi:10.1002/mus.22140" in rules.get("worsening").source  # Muppidi 2011, MCID 2
    assert "doi:10.1136/adc.2005.078733" in rules.get("infusion_reaction").source
    assert "Wolfe" in rules.get("danger_sign").source
    assert rules.get("wear_off").alarm is False and rules.get("danger_sign").alarm is True


def test_a_stable_patient_raises_no_signal_at_all() -> None:
    # 16 weeks, daily entries with +-1 noise, four infusions with mild headaches, mild
    # shortness of breath now and then, temperatures below 38.0: zero false positives.
    assert evaluate(stable()) == []


def test_end_of_cycle_wear_off_raises_the_wear_off_signal_only() -> None:
    signals = evaluate(wear_off())
    assert _rules(signals) == [("wear_off", "active")]
    (signal,) = signals
    assert signal.rule.severity == "low"
    # Evidence: the late-cycle MG-ADL of each of the last three cycles and the infusions.
    assert ("I-112", "administration") in _parts(signal)
    assert ("D-111.5", "mg-adl") in _parts(signal)
    assert {e.resource_type for e in signal.evidence} == {"Observation", "MedicationAdministration"}


def test_wear_off_logged_daily_also_shows_each_resolved_end_of_cycle_worsening() -> None:
    # Logged daily, the last days of each cycle also meet the worsening rule (the patient is
    # worse for those days); each resolves after the infusion, so only wear-off stays active.
    signals = evaluate(wear_off(every_days=1))
    assert [s.rule.id for s in signals if s.active] == ["wear_off"]
    assert {s.rule.id for s in signals if not s.active} == {"worsening"}


def test_wear_off_needs_three_cycles() -> None:
    assert evaluate(wear_off(cycles=2)) == []


def test_an_ivig_flu_with_fever_raises_the_reaction_signal_with_its_evidence() -> None:
    signals = evaluate(ivig_flu())
    assert _rules(signals) == [("infusion_reaction", "resolved")]
    (signal,) = signals
    assert _parts(signal) == {
        ("I-28", "administration"),
        ("D-29", "vital-body-temperature"),
        ("D-29", "symptom-headache"),
        ("D-29", "symptom-chills"),
    }
    assert signal.resolved_by == "diary-entry/D-30"  # 37.9 and a mild headache: no longer


def test_the_reaction_stays_active_while_the_newest_entry_has_fever() -> None:
    records = ivig_flu()[:-2]  # up to the feverish day
    assert _rules(evaluate(records)) == [("infusion_reaction", "active")]


def test_fever_after_the_72_hour_window_is_not_an_infusion_reaction() -> None:
    records = [*stable(28), infusion(28), entry(32, 3, temp=38.6)]  # 4 days after
    assert evaluate(records) == []


def test_a_moderate_reaction_recorded_on_the_infusion_is_a_reaction_signal() -> None:
    records = [*stable(28), infusion(28, ((Symptom.NAUSEA, Severity.SEVERE, 2.0),))]
    (signal,) = evaluate(records)
    assert signal.rule.id == "infusion_reaction" and signal.active
    assert _parts(signal) == {("I-28", "administration"), ("I-28", "reaction-0")}
    assert signal.key == "infusion_reaction:infusion:I-28"


def test_a_flare_with_bulbar_and_breathing_items_is_a_danger_sign_and_worsening() -> None:
    signals = evaluate(bulbar_flare())
    assert _rules(signals) == [("danger_sign", "active"), ("worsening", "active")]
    danger, worsening = signals
    assert _parts(danger) == {
        ("D-21.5", "mg-adl"),
        ("D-22.5", "mg-adl"),
        ("D-22.5", "symptom-shortness_of_breath"),
    }
    assert danger.rule.severity == "high"
    assert _parts(worsening) == {("D-21.5", "mg-adl"), ("D-22.5", "mg-adl")}
    assert worsening.opened_at == entry(22.5).recorded_at  # confirmed by the second entry


def test_one_bad_day_is_not_worsening() -> None:
    records = [*stable(21), entry(21.5, 7), entry(22.5, 3)]
    assert evaluate(records) == []


def test_recovery_resolves_the_signals_at_the_first_entry_without_them() -> None:
    signals = evaluate(recovery())
    assert _rules(signals) == [("danger_sign", "resolved"), ("worsening", "resolved")]
    for signal in signals:
        assert signal.resolved_by == "diary-entry/D-23.5"
        assert signal.resolved_at == entry(23.5).recorded_at
    # Keys do not change when the signal resolves: the same Flag is updated, not a new one.
    assert [s.key for s in signals] == [s.key for s in evaluate(bulbar_flare())]


def test_an_entry_without_mg_adl_does_not_resolve_a_danger_sign() -> None:
    records = [*bulbar_flare(), entry(23.5, None, temp=36.8)]
    assert ("danger_sign", "active") in _rules(evaluate(records))


def test_a_patient_reported_flare_opens_and_resolves() -> None:
    records = [*stable(14), entry(14.5, 3, flare=True), entry(15.5, 3, flare=None)]
    assert _rules(evaluate(records)) == [("flare_up", "resolved")]
    assert _rules(evaluate(records[:-1])) == [("flare_up", "active")]


def test_the_result_does_not_depend_on_the_order_records_arrive_in() -> None:
    records = recovery()
    assert evaluate(records) == evaluate(list(reversed(records)))


def test_records_of_two_patients_are_refused() -> None:
    other = PatientRef(reference="Patient/synthetic-signals-002")
    with pytest.raises(ValueError):
        evaluate([*stable(3), replace(entry(4), patient=other)])


def test_a_clinic_raises_the_worsening_threshold() -> None:
    rules = with_overrides({"worsening": {"threshold": {"points_above_baseline": 8}}})
    assert _rules(evaluate(bulbar_flare(), rules)) == [("danger_sign", "active")]
    assert default_rules().get("worsening").param("points_above_baseline") == 2


def test_a_clinic_disables_a_rule_and_changes_a_severity() -> None:
    rules = with_overrides({"danger_sign": {"enabled": False}, "worsening": {"severity": "high"}})
    (signal,) = evaluate(bulbar_flare(), rules)
    assert signal.rule.id == "worsening" and signal.rule.severity == "high"


@pytest.mark.parametrize(
    "overrides",
    [
        {"worsenning": {}},
        {"worsening": {"title": "x"}},
        {"worsening": {"threshold": {"points": 2}}},
        {"worsening": {"threshold": {"points_above_baseline": "2"}}},
        {"worsening": {"severity": "urgent"}},
    ],
)
def test_a_misspelt_override_is_refused_not_ignored(overrides: dict) -> None:
    with pytest.raises(ValueError):
        with_overrides(overrides)


def test_patient_of_every_signal_is_the_records_patient() -> None:
    assert {s.patient for s in evaluate(recovery())} == {PATIENT}
