"""The report as one self-contained HTML page: inline SVG chart, tables, no external requests."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from service.report.chart import draw, inline_svg
from service.report.data import SEVERITY_SCORE, DangerRow, ReportData, Series

# Nothing on the page may load from elsewhere: it must work offline and leak nothing.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
SIGNALS_NOTICE = (
    "Signals are prompts for review by the care team, not diagnoses and not advice to the "
    "patient; nothing is sent to the patient."
)

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}">
<title>MG diary report: {{ patient }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
 h1 { font-size: 1.4rem; margin-bottom: .2rem; }
 .period { color: #555; margin-top: 0; }
 figure { margin: 1rem 0; }
 figure svg { width: 100%; height: auto; max-width: 1100px; }
 table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
 th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
 th:first-child, td:first-child { text-align: left; }
 caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
 .key span { display: inline-block; margin-right: 1.2rem; }
 #signals { border-left: 4px solid #ef6c00; padding-left: .8rem; }
 #signals h2 { font-size: 1.1rem; }
 .notice { color: #555; font-size: .9rem; }
 .swatch { width: 1rem; height: .8rem; vertical-align: middle; display: inline-block; }
</style>
</head>
<body>
<h1>MG diary report: {{ patient }}</h1>
<p class="period">{{ period }} &middot; {{ data.entry_count }} diary entries &middot;
 {{ data.infusions | length }} infusions &middot; {{ data.reactions | length }} infusion reactions
 {%- if unreadable %} &middot; {{ unreadable }} record(s) on the server could not be read
 {%- endif %}</p>
<section id="signals">
<h2>Signals for review by the care team</h2>
<p class="notice">{{ notice }}</p>
{%- if data.active_signals %}
<ul>
{%- for mark in data.active_signals %}
<li class="signal {{ 'alarm' if mark.alarm else 'info' }}"><strong>{{ mark.title }}</strong>
 ({{ mark.severity }}, since {{ when(mark.opened_at) }}): {{ mark.text }}</li>
{%- endfor %}
</ul>
{%- else %}
<p>No active signals.</p>
{%- endif %}
{%- set resolved = data.signals | rejectattr("active") | list %}
{%- if resolved %}
<p>Resolved in this period:
{%- for mark in resolved %} {{ mark.title }} ({{ when(mark.opened_at) }} to
 {{ when(mark.resolved_at) }}){{ ";" if not loop.last else "." }}{% endfor %}</p>
{%- endif %}
</section>
<p class="period">Times are the patient's own, as each entry was recorded (latest entry:
 {{ data.offset_text }}).</p>
<p class="key"><span><i class="swatch" style="background:#7b61c4;opacity:.4"></i>
 infusion, start to end</span><span><i class="swatch" style="background:#f9a825;opacity:.5"></i>
 flare-up day</span><span style="color:#c62828">&#9660; infusion reaction (IVIG flu),
 at onset</span><span style="color:#ef6c00">&#9670; care-team signal, opened</span>
 <span style="color:#1565c0">&#9670; information for review</span></p>
<figure id="report-chart" role="img" aria-label="MG-ADL total, breathing and swallowing
 {%- if names %} and {{ names }}{% endif %} over time, with infusion periods, flare-up days and
 infusion reactions marked">{{ chart }}</figure>

<table id="danger-signs">
<caption>Breathing and swallowing problems (the danger signs of MG), entries above 0</caption>
<thead><tr><th>recorded</th>
{%- for series in data.danger %}<th>{{ series.label }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in data.danger_rows %}
<tr><td>{{ when(row.at) }}</td>
{%- for series in data.danger %}<td>{{ danger_value(series, row) }}</td>{% endfor %}</tr>
{%- else %}
<tr><td colspan="{{ data.danger | length + 1 }}">none recorded</td></tr>
{%- endfor %}
</tbody>
</table>

<p id="flare-days">Flare-up days (patient-reported):
{%- for day in data.flare_days %} {{ day.isoformat() }}{{ "," if not loop.last }}
{%- else %} none{% endfor %}</p>

<table id="cycle-table">
<caption>Mean scores by days before the next infusion (wearing off shows as higher scores
 close to the next infusion)</caption>
<thead><tr><th>before next infusion</th><th>entries</th>
{%- for column in cycle_columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in data.cycle %}
<tr><td>{{ row.label }}</td><td>{{ row.entries }}</td>
{%- for key in cycle_keys %}<td>{{ "-" if row.means[key] is none else row.means[key] }}</td>
{%- endfor %}</tr>
{%- endfor %}
</tbody>
</table>

<table id="infusions">
<caption>Infusions</caption>
<thead><tr><th>start</th><th>end</th><th>status</th><th>product</th><th>dose (g)</th></tr></thead>
<tbody>
{%- for span in data.infusions %}
<tr><td>{{ when(span.start) }}</td><td>{{ when(span.end) }}</td><td>{{ span.status.value }}</td>
<td>{{ span.product or "-" }}</td><td>{{ span.dose_g }}</td></tr>
{%- else %}
<tr><td colspan="5">no infusions in this period</td></tr>
{%- endfor %}
</tbody>
</table>

<table id="reactions">
<caption>Infusion reactions</caption>
<thead><tr><th>onset</th><th>symptom</th><th>severity</th><th>infusion started</th></tr></thead>
<tbody>
{%- for mark in data.reactions %}
<tr><td>{{ when(mark.onset) }}</td><td>{{ mark.symptom }}</td><td>{{ mark.severity }}</td>
<td>{{ when(mark.infusion_start) }}</td></tr>
{%- else %}
<tr><td colspan="4">none recorded</td></tr>
{%- endfor %}
</tbody>
</table>
<p>Chart alone: <a href="{{ png_href }}">PNG</a> &middot; <a href="{{ svg_href }}">SVG</a></p>
</body>
</html>
"""

_ENV = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_TEMPLATE = _ENV.from_string(TEMPLATE)


def when(value: datetime | None) -> str:
    """A time as the clinician reads it: date and minutes, with the recorded offset."""
    return value.isoformat(timespec="minutes") if value is not None else "-"


_SEVERITY_NAME = {float(score): name for name, score in SEVERITY_SCORE.items()}


def danger_value(series: Series, row: DangerRow) -> str:
    """An MG-ADL item as its score, a symptom rating as its severity word, '-' if not recorded."""
    value = row.values.get(series.name)
    if value is None:
        return "-"
    return str(int(value)) if series.name.startswith("mg_adl_") else _SEVERITY_NAME[value]


def _period(data: ReportData) -> str:
    if data.since is None and data.until is None:
        return "all recorded entries"
    return f"from {when(data.since) if data.since else 'the start'} to " + (
        when(data.until) if data.until else "now"
    )


def render_page(
    data: ReportData, patient: str, png_href: str, svg_href: str, unreadable: int = 0
) -> str:
    """The whole page; every value is escaped, the chart is our own SVG inlined."""
    names = [s.name for s in (*data.ratings, *data.severities)]
    # Every score the table was built for (a danger symptom asked for too, though charted apart).
    cycle_keys = list(data.cycle[0].means) if data.cycle else ["mg_adl_total"]
    return _TEMPLATE.render(
        csp=CONTENT_SECURITY_POLICY,
        patient=patient,
        period=_period(data),
        data=data,
        names=", ".join(n.replace("_", " ") for n in names),
        # Drawn by us from numbers and our own labels: safe to inline unescaped.
        chart=Markup(inline_svg(draw(data, "svg"))),
        cycle_columns=["MG-ADL total", *(n.replace("_", " ") for n in cycle_keys[1:])],
        cycle_keys=cycle_keys,
        when=when,
        danger_value=danger_value,
        png_href=png_href,
        svg_href=svg_href,
        unreadable=unreadable,
        notice=SIGNALS_NOTICE,
    )
