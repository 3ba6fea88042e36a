"""The chart and the page: real images, every value escaped, nothing loaded from elsewhere."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from xml.etree import ElementTree

from mappings.records import AdverseReaction, MgAdl, Severity, Symptom, SymptomRating
from service.report import build_report, draw, render_page
from tests.unit.report.test_report_data import T0, adl, entry, infusion

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sample_report():  # type: ignore[no-untyped-def]
    reaction = AdverseReaction(Symptom.HEADACHE, Severity.MODERATE, T0 + timedelta(days=7, hours=8))
    infusions = [infusion(7, reactions=(reaction,)), infusion(28)]
    entries = [
        entry(d, mg_adl=adl(3 + d % 7), fatigue=d % 11, muscle_weakness=4) for d in range(30)
    ]
    return build_report(entries, infusions)


def test_png_and_svg_are_images_of_the_chart() -> None:
    data = sample_report()
    png = draw(data, "png")
    assert png.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    # MG-ADL, breathing/swallowing (always), ratings
    assert (width, height) == (1100, int((2.3 * 3 + 0.9) * 100))
    svg = draw(data, "svg")
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_an_empty_report_still_draws() -> None:
    assert draw(build_report([], []), "png").startswith(PNG_SIGNATURE)


def test_page_is_self_contained_and_escapes_every_value() -> None:
    hostile = "<script>alert(1)</script>"
    data = sample_report()
    spans = tuple(
        type(span)(span.start, span.end, span.status, hostile, span.dose_g)
        for span in data.infusions
    )
    data = type(data)(**{**data.__dict__, "infusions": spans})
    html = render_page(data, "Patient/synthetic-1", "?format=png&a=<b>", "?format=svg")
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "?format=png&amp;a=&lt;b&gt;" in html
    assert '<figure id="report-chart"' in html
    assert "<svg" in html and "<?xml" not in html
    # nothing fetched from elsewhere: no external src/href, and a CSP that forbids it
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert 'content="default-src &#39;none&#39;;' in html  # escaped in the attribute
    assert "<script" not in html


def test_page_lists_infusions_reactions_and_the_cycle_table() -> None:
    html = render_page(sample_report(), "Patient/synthetic-1", "?format=png", "?format=svg")
    assert html.count("<td>completed</td>") == 2
    assert "<td>headache</td><td>moderate</td>" in html
    for label in ("0-2 days", "3-6 days", "7-13 days", "14+ days"):
        assert f"<td>{label}</td>" in html
    assert "<td>Privigen</td>" in html


def test_lines_break_where_nothing_was_recorded_for_days() -> None:
    import math

    from service.report.chart import _with_gaps

    data = build_report([entry(0, fatigue=2), entry(1, fatigue=3), entry(6, fatigue=7)], [])
    times, values = _with_gaps(data.ratings[0])
    assert len(times) == 4
    assert values[:2] == [2.0, 3.0] and math.isnan(values[2]) and values[3] == 7.0
    assert times[1] < times[2] < times[3]


def test_the_chart_draws_flare_days_and_breathing_and_swallowing() -> None:
    entries = [entry(d, mg_adl=adl(3 + d), flare_up=d == 2) for d in range(4)]
    svg = draw(build_report(entries, []), "svg").decode()
    # matplotlib writes each text as a comment before its glyphs, and fills as colours
    assert "MG-ADL breathing (0-3)" in svg and "Trouble swallowing (1 mild - 3 severe)" in svg
    assert "flare-up day (patient-reported)" in svg
    assert "#f9a825" in svg
    quiet = draw(build_report([entry(0, mg_adl=adl(3), flare_up=False)], []), "svg").decode()
    assert "#f9a825" not in quiet and "flare-up day" not in quiet


def test_the_chart_places_values_at_the_patients_wall_clock_time() -> None:
    from datetime import date, datetime, timezone

    from mappings.records import DiaryEntry
    from service.report.chart import _with_gaps, _x_limits

    evening = datetime(2026, 11, 3, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    patient = entry(0).patient
    data = build_report([DiaryEntry("e", patient, evening, fatigue=4)], [],
                        since=datetime(2026, 11, 3, 5, 0, tzinfo=UTC))  # fmt: skip
    times, _ = _with_gaps(data.ratings[0])
    assert times == [datetime(2026, 11, 3, 21, 0)]
    limits = _x_limits(data)
    assert limits is not None
    # `since` (05:00 UTC) shown in the patient's offset: 00:00 on Nov 3, minus 2% padding
    assert limits[0].date() == date(2026, 11, 2) and limits[0] < datetime(2026, 11, 3, 0, 0)
    assert limits[0] > datetime(2026, 11, 2, 23, 0)


def test_page_lists_breathing_and_swallowing_problems_and_flare_days() -> None:
    entries = [
        entry(0, mg_adl=adl(3)),
        entry(1, mg_adl=MgAdl(0, 0, 1, 2, 0, 0, 0, 0), flare_up=True,
              symptoms=(SymptomRating(Symptom.SHORTNESS_OF_BREATH, Severity.SEVERE),)),
    ]  # fmt: skip
    html = render_page(build_report(entries, []), "Patient/synthetic-1", "?png", "?svg")
    assert '<table id="danger-signs">' in html
    row = "<tr><td>2026-10-02T20:00+00:00</td><td>2</td><td>1</td><td>severe</td><td>-</td></tr>"
    assert row in html
    assert html.count("<tr><td>2026-10-") == 1  # only the entry with a problem
    assert "Flare-up days (patient-reported): 2026-10-02</p>" in html
    empty = render_page(build_report([entry(0, fatigue=1)], []), "Patient/s-1", "?p", "?s")
    assert "none recorded" in empty and "Flare-up days (patient-reported): none</p>" in empty
