"""Draw the report chart with matplotlib's Agg/SVG canvases (no GUI, no pyplot global state)."""

from __future__ import annotations

import io
import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Literal, overload

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from service.report.data import DANGER_MAX, ReportData, Series, local_time

ImageFormat = Literal["png", "svg"]
GAP = timedelta(days=3)
SEVERITY_MAX = 3
INFUSION_COLOUR = "#7b61c4"
REACTION_COLOUR = "#c62828"
SIGNAL_COLOUR = "#ef6c00"
INFO_COLOUR = "#1565c0"
FLARE_COLOUR = "#f9a825"
# Breathing and swallowing stand out in their own warm colours (MG-ADL items as lines, the
# symptom ratings as points), apart from the blue/green of the other series.
DANGER_COLOURS = ("#b71c1c", "#6a1b9a", "#d84315", "#880e4f")
LINE_COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6d4c41", "#00838f", "#ad1457")
# matplotlib's own state (font cache, rcParams) is shared by threads: draw one chart at a time.
_LOCK = threading.Lock()


# Every time on the x axis is the patient's wall-clock time (naive: matplotlib takes it as UTC,
# and the axis is formatted in UTC, so what is shown is exactly the wall-clock time).


@overload
def _num(value: datetime) -> float: ...


@overload
def _num(value: list[datetime]) -> list[float]: ...


def _num(value: datetime | list[datetime]) -> float | list[float]:
    """matplotlib's date numbers (days since its epoch) for wall-clock (naive) datetimes."""
    if isinstance(value, datetime):
        return float(mdates.date2num(value))  # type: ignore[no-untyped-call]
    return [float(x) for x in mdates.date2num(value)]  # type: ignore[no-untyped-call]


def _with_gaps(series: Series) -> tuple[list[datetime], list[float]]:
    """Times and values, with a break wherever nothing was recorded for GAP (a line across a gap
    would draw values nobody recorded)."""
    times: list[datetime] = []
    values: list[float] = []
    for point in series.points:
        if times and point.local - times[-1] > GAP:
            times.append(times[-1] + (point.local - times[-1]) / 2)
            values.append(math.nan)
        times.append(point.local)
        values.append(point.value)
    return times, values


def _plot_series(ax: Axes, series: Series, colour: str, line: bool = True) -> None:
    if series.points:
        times, values = _with_gaps(series)
        ax.plot(
            _num(times),
            values,
            marker="o",
            markersize=3 if line else 5,
            linewidth=1.4 if line else 0,
            color=colour,
            label=series.label,
        )
    else:
        ax.plot([], [], color=colour, label=f"{series.label}: not recorded")


def _mark_infusions(axes: list[Axes], data: ReportData) -> None:
    for index, span in enumerate(data.infusions):
        start = _num(local_time(span.start))
        for ax in axes:
            label = "IVIG infusion" if index == 0 and ax is axes[0] else None
            if span.end is not None and span.end > span.start:
                end = _num(local_time(span.end))
                ax.axvspan(start, end, color=INFUSION_COLOUR, alpha=0.25, label=label)
            else:
                ax.axvline(start, color=INFUSION_COLOUR, linewidth=2, alpha=0.6, label=label)


def _mark_flare_days(axes: list[Axes], data: ReportData) -> None:
    """Each flare-up day shaded from its midnight to the next, in the patient's own time."""
    for index, day in enumerate(data.flare_days):
        start = datetime(day.year, day.month, day.day)
        for ax in axes:
            label = "flare-up day (patient-reported)" if index == 0 and ax is axes[0] else None
            ax.axvspan(
                _num(start), _num(start + timedelta(days=1)),
                color=FLARE_COLOUR, alpha=0.22, linewidth=0, label=label,
            )  # fmt: skip


def _mark_reactions(axes: list[Axes], data: ReportData, top: float) -> None:
    if not data.reactions:
        return
    for onset in {local_time(m.onset) for m in data.reactions}:
        for ax in axes:
            ax.axvline(_num(onset), color=REACTION_COLOUR, linewidth=0.8, linestyle="--", alpha=0.7)
    ax = axes[0]
    ax.plot(
        _num([local_time(m.onset) for m in data.reactions]),
        [top] * len(data.reactions),
        linestyle="none",
        marker="v",
        markersize=9,
        color=REACTION_COLOUR,
        label="infusion reaction (IVIG flu), at onset",
    )


def _window_edge(data: ReportData, at: datetime | None) -> datetime | None:
    """A window limit (an instant) as wall-clock time in the latest recorded offset."""
    if at is None:
        return None
    return local_time(at.astimezone(data.offset or UTC))


def _mark_signals(axes: list[Axes], data: ReportData, end: datetime | None) -> None:
    # Care-team signals as a band from opening to resolution (or the chart's end) on the MG-ADL
    # panel: alarms in orange, information (wear-off) in blue; the page lists what they mean.
    ax = axes[0]
    labelled: set[bool] = set()
    for mark in data.signals:
        # On the patient's wall clock, like every other mark (`end` is already).
        opened = local_time(mark.opened_at)
        stop = local_time(mark.resolved_at) if mark.resolved_at else end or opened
        colour = SIGNAL_COLOUR if mark.alarm else INFO_COLOUR
        label = None
        if mark.alarm not in labelled:
            labelled.add(mark.alarm)
            label = "care-team signal" if mark.alarm else "information for review (wear-off)"
        if stop > opened:
            ax.axvspan(_num(opened), _num(stop), ymin=0.9, ymax=0.97, color=colour,
                       alpha=0.8 if mark.active else 0.35, label=label)  # fmt: skip
        ax.plot(_num(opened), 21.0, linestyle="none", marker="D", markersize=6,
                color=colour, label=None)  # fmt: skip


def _x_limits(data: ReportData) -> tuple[datetime, datetime] | None:
    series = (data.mg_adl, *data.danger, *data.ratings, *data.severities)
    times = [p.local for s in series for p in s.points]
    times += [local_time(span.start) for span in data.infusions]
    times += [local_time(span.end) for span in data.infusions if span.end is not None]
    times += [local_time(m.onset) for m in data.reactions]
    times += [local_time(m.opened_at) for m in data.signals]
    low = _window_edge(data, data.since) or (min(times) if times else None)
    high = _window_edge(data, data.until) or (max(times) if times else None)
    if low is None or high is None:
        return None
    if high <= low:
        high = low + timedelta(days=1)
    pad = (high - low) * 0.02
    return low - pad, high + pad


def draw(data: ReportData, fmt: ImageFormat, width_in: float = 11.0) -> bytes:
    """The chart as PNG or SVG bytes: MG-ADL on top, breathing and swallowing always below it,
    then the ratings and the severities chosen."""
    panels: list[tuple[str, tuple[Series, ...], int]] = [
        ("MG-ADL total", (data.mg_adl,), 24),
        ("Breathing /\nswallowing (0-3)", data.danger, DANGER_MAX),
        ("Ratings 0-10", data.ratings, 10),
    ]
    if not data.ratings:
        panels.pop()
    if data.severities:
        panels.append(("Symptom severity", data.severities, SEVERITY_MAX))
    with _LOCK:
        figure = Figure(figsize=(width_in, 2.3 * len(panels) + 0.9), dpi=100, layout="constrained")
        axes = list(figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0])
        colours = iter(LINE_COLOURS * 3)
        for ax, (title, series, scale_max) in zip(axes, panels, strict=True):
            danger = series is data.danger
            for index, item in enumerate(series):
                # Severities are sparse events (a symptom noted or not): points, not a line.
                if danger:
                    colour = DANGER_COLOURS[index % len(DANGER_COLOURS)]
                    _plot_series(ax, item, colour, line=item.name.startswith("mg_adl_"))
                else:
                    _plot_series(ax, item, next(colours), line=scale_max != SEVERITY_MAX)
            ax.set_ylim(0, scale_max + 0.5)
            if danger:
                ax.set_yticks([0, 1, 2, 3])
            elif scale_max == SEVERITY_MAX:
                ax.set_yticks([1, 2, 3], ["mild", "moderate", "severe"])
            ax.set_ylabel(title)
            ax.grid(True, alpha=0.3)
        _mark_flare_days(axes, data)
        _mark_infusions(axes, data)
        _mark_reactions(axes, data, 23.0)
        limits = _x_limits(data)
        _mark_signals(axes, data, limits[1] if limits else None)
        if limits is not None:
            axes[-1].set_xlim(_num(limits[0]), _num(limits[1]))
        locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        axes[-1].xaxis.set_major_locator(locator)
        formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
        axes[-1].xaxis.set_major_formatter(formatter)
        axes[-1].set_xlabel("date (the patient's local time, as each entry was recorded)")
        for ax in axes:
            # Beside the plot, so it never hides a value or a reaction marker.
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        if data.entry_count == 0:
            axes[0].text(
                0.5, 0.5, "no diary entries in this period", transform=axes[0].transAxes,
                ha="center", va="center", fontsize="large", color="#555555",
            )  # fmt: skip
        out = io.BytesIO()
        # No creation date in the file: the same data gives the same bytes.
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(out, format=fmt, metadata=metadata)
    return out.getvalue()


def inline_svg(svg: bytes) -> str:
    """SVG bytes as an element to put inside HTML (without the XML prolog and DOCTYPE)."""
    text = svg.decode("utf-8")
    return text[text.index("<svg") :]
