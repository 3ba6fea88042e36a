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

from service.report.data import ReportData, Series

ImageFormat = Literal["png", "svg"]
GAP = timedelta(days=3)
SEVERITY_MAX = 3
INFUSION_COLOUR = "#7b61c4"
REACTION_COLOUR = "#c62828"
SIGNAL_COLOUR = "#ef6c00"
INFO_COLOUR = "#1565c0"
LINE_COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6d4c41", "#00838f", "#ad1457")
# matplotlib's own state (font cache, rcParams) is shared by threads: draw one chart at a time.
_LOCK = threading.Lock()


@overload
def _num(value: datetime) -> float: ...


@overload
def _num(value: list[datetime]) -> list[float]: ...


def _num(value: datetime | list[datetime]) -> float | list[float]:
    """matplotlib's date numbers (days since its epoch, UTC) for aware datetimes."""
    if isinstance(value, datetime):
        return float(mdates.date2num(value))  # type: ignore[no-untyped-call]
    return [float(x) for x in mdates.date2num(value)]  # type: ignore[no-untyped-call]


def _with_gaps(series: Series) -> tuple[list[datetime], list[float]]:
    """Times and values, with a break wherever nothing was recorded for GAP (a line across a gap
    would draw values nobody recorded)."""
    times: list[datetime] = []
    values: list[float] = []
    for point in series.points:
        if times and point.at - times[-1] > GAP:
            times.append(times[-1] + (point.at - times[-1]) / 2)
            values.append(math.nan)
        times.append(point.at)
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
        for ax in axes:
            label = "IVIG infusion" if index == 0 and ax is axes[0] else None
            if span.end is not None and span.end > span.start:
                ax.axvspan(
                    _num(span.start), _num(span.end), color=INFUSION_COLOUR, alpha=0.25, label=label
                )
            else:
                ax.axvline(
                    _num(span.start), color=INFUSION_COLOUR, linewidth=2, alpha=0.6, label=label
                )


def _mark_reactions(axes: list[Axes], data: ReportData, top: float) -> None:
    if not data.reactions:
        return
    for onset in {m.onset for m in data.reactions}:
        for ax in axes:
            ax.axvline(_num(onset), color=REACTION_COLOUR, linewidth=0.8, linestyle="--", alpha=0.7)
    ax = axes[0]
    ax.plot(
        _num([m.onset for m in data.reactions]),
        [top] * len(data.reactions),
        linestyle="none",
        marker="v",
        markersize=9,
        color=REACTION_COLOUR,
        label="infusion reaction (IVIG flu), at onset",
    )


def _mark_signals(axes: list[Axes], data: ReportData, end: datetime | None) -> None:
    # Care-team signals as a band from opening to resolution (or the chart's end) on the MG-ADL
    # panel: alarms in orange, information (wear-off) in blue; the page lists what they mean.
    ax = axes[0]
    labelled: set[bool] = set()
    for mark in data.signals:
        stop = mark.resolved_at or end or mark.opened_at
        colour = SIGNAL_COLOUR if mark.alarm else INFO_COLOUR
        label = None
        if mark.alarm not in labelled:
            labelled.add(mark.alarm)
            label = "care-team signal" if mark.alarm else "information for review (wear-off)"
        if stop > mark.opened_at:
            ax.axvspan(_num(mark.opened_at), _num(stop), ymin=0.9, ymax=0.97, color=colour,
                       alpha=0.8 if mark.active else 0.35, label=label)  # fmt: skip
        ax.plot(_num(mark.opened_at), 21.0, linestyle="none", marker="D", markersize=6,
                color=colour, label=None)  # fmt: skip


def _x_limits(data: ReportData) -> tuple[datetime, datetime] | None:
    times = [p.at for s in (data.mg_adl, *data.ratings, *data.severities) for p in s.points]
    times += [span.start for span in data.infusions]
    times += [span.end for span in data.infusions if span.end is not None]
    times += [m.onset for m in data.reactions]
    times += [m.opened_at for m in data.signals]
    low = data.since or (min(times) if times else None)
    high = data.until or (max(times) if times else None)
    if low is None or high is None:
        return None
    if high <= low:
        high = low + timedelta(days=1)
    pad = (high - low) * 0.02
    return low - pad, high + pad


def draw(data: ReportData, fmt: ImageFormat, width_in: float = 11.0) -> bytes:
    """The chart as PNG or SVG bytes: MG-ADL on top, ratings below, severities if chosen."""
    panels: list[tuple[str, tuple[Series, ...], int]] = [
        ("MG-ADL total", (data.mg_adl,), 24),
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
            for item in series:
                # Severities are sparse events (a symptom noted or not): points, not a line.
                _plot_series(ax, item, next(colours), line=scale_max != SEVERITY_MAX)
            ax.set_ylim(0, scale_max + 0.5)
            if scale_max == SEVERITY_MAX:
                ax.set_yticks([1, 2, 3], ["mild", "moderate", "severe"])
            ax.set_ylabel(title)
            ax.grid(True, alpha=0.3)
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
        axes[-1].set_xlabel("date (UTC)")
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
