"""The report opens with the active signals and marks every signal on the chart."""

from __future__ import annotations

from mappings.records import DiaryEntry, InfusionRecord
from mappings.signals import evaluate
from service.report import build_report, draw, render_page
from tests.unit.mappings.signal_courses import bulbar_flare, recovery, stable


def _report(records: list) -> object:
    return build_report(
        [r for r in records if isinstance(r, DiaryEntry)],
        [r for r in records if isinstance(r, InfusionRecord)],
        signals=evaluate(records),
    )


def test_the_page_opens_with_the_active_signals_before_the_chart() -> None:
    data = _report(bulbar_flare())
    assert [m.rule for m in data.active_signals] == ["danger_sign", "worsening"]
    html = render_page(data, "Patient/synthetic-signals-001", "?format=png", "?format=svg")
    signals_at, chart_at = html.index('id="signals"'), html.index('id="report-chart"')
    assert signals_at < chart_at
    section = html[signals_at:chart_at]
    assert "Bulbar or respiratory symptoms reported" in section
    assert "MG-ADL total above the patient&#39;s own baseline" in section  # escaped
    assert "not diagnoses" in section and "not a diagnosis" in section


def test_resolved_signals_are_listed_as_resolved_not_active() -> None:
    data = _report(recovery())
    assert data.active_signals == ()
    html = render_page(data, "Patient/synthetic-signals-001", "?format=png", "?format=svg")
    assert "No active signals." in html and "Resolved in this period" in html


def test_the_chart_marks_signals_and_a_stable_course_has_none() -> None:
    marked = draw(_report(bulbar_flare()), "svg").decode()
    assert "care-team signal" in marked
    plain = draw(_report(stable(28)), "svg").decode()
    assert "care-team signal" not in plain
    assert "No active signals." in render_page(_report(stable(28)), "Patient/x", "?", "?")
