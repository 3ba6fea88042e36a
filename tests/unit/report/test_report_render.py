"""The chart and the page: real images, every value escaped, nothing loaded from elsewhere."""

from __future__ import annotations

import re
from datetime import timedelta
from xml.etree import ElementTree

from mappings.records import AdverseReaction, Severity, Symptom
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
    assert (width, height) == (1100, int((2.3 * 2 + 0.9) * 100))
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
