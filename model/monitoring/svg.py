"""Chart primitives drawn as inline SVG text, for the monitoring pages (decision 40).

Why by hand: the pages are rendered inside the deployed Function App, which ships numpy and pandas
but neither matplotlib nor scipy, and they must open with no request leaving the page, so a
JavaScript chart library would have to be vendored into every page. Four chart kinds are all the
pages need: values over time with intervals (`line_chart`), reference beside batch
(`grouped_bars`), feature x batch (`heatmap`) and rows per batch (`stacked_bars`).

Every chart is one `<svg class="chart" data-chart="{name}">` with a visible title, axis labels and
a `<title>` tooltip on each mark; the drawn data marks (bars, cells, dots, lines, bands) carry
`class="mark"` so a test can count them. Elements are built by `el`, which escapes every attribute
value, and every text goes through `esc` (html.escape): feature names, category values and blob
names come from the data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from model.monitoring.text import esc, number, percent, short

WIDTH = 1000
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:100%;height:auto"
MISSING = "#e2e8f0"
INK, GREY, AXIS = "#1a202c", "#4a5568", "#718096"
PALETTE = ("#2b6cb0", "#2f855a", "#b7791f", "#805ad5", "#c05621", "#319795", "#b83280")
Legend = list[list[tuple[str, str, float]]]


def attributes(**attrs: object) -> str:
    """Attributes, each value escaped (`class_` -> class, `font_size` -> font-size), floats to 0.1 px."""
    parts = []
    for key, value in attrs.items():
        if value is not None:
            text = f"{value:.1f}" if isinstance(value, float) else str(value)
            parts.append(f' {key.rstrip("_").replace("_", "-")}="{esc(text)}"')
    return "".join(parts)


def el(tag: str, content: str = "", /, **attrs: object) -> str:
    """An element; `content` must already be markup (escape text with `esc`)."""
    return f"<{tag}{attributes(**attrs)}>{content}</{tag}>" if content else f"<{tag}{attributes(**attrs)}/>"


def tip(text: str) -> str:
    return el("title", esc(text))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    high = high if high > low else low + 1.0
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


_STEPS = [(3600 * h, "%H:%M") for h in (1, 3, 6, 12)] + [(86400 * d, "%Y-%m-%d") for d in (1, 2, 7, 14, 28)]


def time_ticks(low: float, high: float, count: int = 8) -> list[tuple[float, str]]:
    """Ticks on a time axis in epoch seconds: whole hours or whole UTC days (Mondays from a week up)."""
    span = max(high - low, 3600.0)
    step, fmt = next(((s, f) for s, f in _STEPS if span / s <= count), (span / count, "%Y-%m-%d"))
    offset = 4 * 86400 if step % (7 * 86400) == 0 else 0  # epoch day 0 is a Thursday
    first = math.ceil((low - offset) / step) * step + offset
    stamps = [first + i * step for i in range(int((high - first) / step) + 1)]
    return [(at, dt.datetime.fromtimestamp(at, dt.UTC).strftime(fmt)) for at in stamps]


@dataclass(frozen=True)
class Frame:
    """The plot area inside a chart of `width` x `height`, and the maps from data to pixels."""

    width: int
    height: int
    left: int
    top: int
    bottom: int = 44
    right: int = 16

    @property
    def inner_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def base(self) -> float:
        return float(self.height - self.bottom)

    def sx(self, x: float, lo: float, hi: float) -> float:
        return self.left + (x - lo) / ((hi - lo) or 1.0) * self.inner_width

    def sy(self, y: float, lo: float, hi: float) -> float:
        return self.base - (y - lo) / ((hi - lo) or 1.0) * (self.base - self.top)


def _legend_rows(items: Sequence[tuple[str, str]], width: float) -> Legend:
    """Legend entries left to right, wrapped at the chart's width: (label, colour, x) per row."""
    rows: Legend = [[]]
    x = 0.0
    for label, colour in items:
        size = 24 + 6.2 * len(label)
        if rows[-1] and x + size > width:
            rows.append([])
            x = 0.0
        rows[-1].append((label, colour, x))
        x += size
    return rows


def _labels_fit(labels: Sequence[str], inner_width: float) -> bool:
    return max((len(short(label)) for label in labels), default=0) * 6 <= inner_width / max(1, len(labels))


def _layout(width: int, plot_height: int, left: int, subtitle: str, legend: Sequence[tuple[str, str]],
            labels: Sequence[str]) -> tuple[Frame, Legend]:  # fmt: skip
    """The frame of a chart whose plot is `plot_height` high, under its title, subtitle and legend,
    above its category labels (one line when they fit, else slanted and as deep as the longest)."""
    rows = _legend_rows(legend, width - left - 16) if legend else []
    top = (66 if subtitle else 50) + 15 * max(0, len(rows) - 1)
    fits = _labels_fit(labels, width - left - 16)
    bottom = 44 if fits else 40 + round(4.2 * max(len(short(label)) for label in labels))
    return Frame(width, top + plot_height + bottom, left, top, bottom), rows


def _open(name: str, title: str, frame: Frame, subtitle: str, legend: Legend, x_label: str,
          y_label: str) -> str:  # fmt: skip
    """The root element's opening, title, subtitle, legend and axis labels."""
    parts = [tip(title), el("text", esc(title), x=8, y=18, font_size=14, font_weight=600, fill=INK)]
    if subtitle:
        parts.append(el("text", esc(subtitle), x=8, y=34))
    for r, row in enumerate(legend):
        y = frame.top - 10 - 15 * (len(legend) - 1 - r)
        for label, colour, dx in row:
            parts.append(el("rect", x=frame.left + dx, y=y - 8, width=10, height=10, fill=colour))
            parts.append(el("text", esc(label), x=frame.left + dx + 14, y=y + 1, fill=INK))
    middle = (frame.top + frame.base) / 2
    centre = frame.left + frame.inner_width / 2
    parts.append(el("text", esc(x_label), x=centre, y=frame.height - 6, text_anchor="middle"))
    parts.append(
        el("text", esc(y_label), transform=f"translate(13 {middle:.1f}) rotate(-90)", text_anchor="middle")
    )
    root = attributes(class_="chart", data_chart=name, xmlns="http://www.w3.org/2000/svg", role="img",
                      viewBox=f"0 0 {frame.width} {frame.height}", width=frame.width, height=frame.height,
                      aria_label=title, style=FONT, font_size=11, fill=GREY)  # fmt: skip
    return f"<svg{root}>" + "".join(parts)


def _y_axis(frame: Frame, ticks: Sequence[float], lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    parts = []
    for value in ticks:
        y = frame.sy(value, lo, hi)
        parts.append(el("line", x1=frame.left, x2=frame.width - frame.right, y1=y, y2=y, stroke="#edf2f7"))
        parts.append(
            el("text", esc(fmt(value)), x=frame.left - 5, y=y + 3.5, font_size=10, text_anchor="end")
        )
    right, base = frame.width - frame.right, frame.base
    parts.append(el("line", x1=frame.left, x2=right, y1=base, y2=base, stroke=AXIS))
    return "".join(parts)


def _x_labels(frame: Frame, labels: Sequence[str], centre: Callable[[int], float]) -> str:
    """Labels under the bars or cells, straight or slanted as `_layout` made room; full text as tooltip."""
    fits = _labels_fit(labels, frame.inner_width)
    y = frame.base + 13
    parts = []
    for i, label in enumerate(labels):
        if label:
            x = centre(i)
            turn = None if fits else f"rotate(-35 {x:.1f} {y:.1f})"
            parts.append(el("text", tip(label) + esc(short(label)), x=x, y=y, font_size=10,
                            text_anchor="middle" if fits else "end", transform=turn))  # fmt: skip
    return "".join(parts)


def _thinned(labels: Sequence[str], most: int = 30) -> list[str]:
    step = max(1, math.ceil(len(labels) / most))
    return [label if i % step == 0 else "" for i, label in enumerate(labels)]


@dataclass(frozen=True)
class Point:
    """One value on a line chart, with its interval (low, high) when it has one."""

    x: float
    y: float
    low: float | None = None
    high: float | None = None
    tip: str = ""


@dataclass(frozen=True)
class Series:
    """`band`: line, shaded interval and dots; `whiskers`: dots with interval bars; `dashed`: a line."""

    label: str
    points: Sequence[Point]
    colour: str
    style: str = "band"


@dataclass(frozen=True)
class Marker:
    """A vertical line on the time axis (a promotion), labelled at the top when there is room."""

    x: float
    label: str
    tip: str = ""


def _series(frame: Frame, s: Series, xs: tuple[float, float], ys: tuple[float, float]) -> str:
    """One series' marks: its band, its line, its dots or whiskers."""
    points = sorted(s.points, key=lambda p: p.x)
    at = [(frame.sx(p.x, *xs), frame.sy(p.y, *ys)) for p in points]
    parts = []
    run = [p for p in points if p.low is not None and p.high is not None]
    if s.style == "band" and len(run) > 1:
        edge = [(p.x, p.high) for p in run] + [(p.x, p.low) for p in reversed(run)]
        d = "M" + " L".join(f"{frame.sx(x, *xs):.1f},{frame.sy(y, *ys):.1f}" for x, y in edge) + " Z"  # type: ignore[arg-type]
        parts.append(
            el("path", tip(f"{s.label}: interval"), class_="mark", d=d, fill=s.colour, fill_opacity=0.2)
        )
    if len(at) > 1 and s.style in ("band", "dashed"):
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in at)
        dash = "6 4" if s.style == "dashed" else None
        line = {"stroke": s.colour, "stroke_width": 1.5, "stroke_dasharray": dash}
        parts.append(el("path", tip(s.label), class_="mark", d=d, fill="none", **line))
    for p, (x, y) in zip(points, at, strict=True):
        if s.style == "whiskers" and p.low is not None and p.high is not None:
            y1, y2 = frame.sy(p.low, *ys), frame.sy(p.high, *ys)
            d = f"M{x:.1f},{y1:.1f} V{y2:.1f} M{x - 4:.1f},{y1:.1f} h8 M{x - 4:.1f},{y2:.1f} h8"
            parts.append(el("path", tip(p.tip), class_="mark", d=d, stroke=s.colour, stroke_width=1.5))
        if s.style != "dashed":
            radius = 4 if s.style == "whiskers" else 2.5
            parts.append(el("circle", tip(p.tip), class_="mark", cx=x, cy=y, r=radius, fill=s.colour))
    return el("g", "".join(parts), class_="series", data_series=s.label)


def line_chart(name: str, title: str, series: Sequence[Series], *, x_label: str, y_label: str,
               x_range: tuple[float, float], x_ticks: Sequence[tuple[float, str]],
               y_range: tuple[float, float] | None = None, y_format: Callable[[float], str] = number,
               markers: Sequence[Marker] = (), subtitle: str = "") -> str:  # fmt: skip
    """Values over time, each series with its interval; markers as dashed vertical lines."""
    frame, legend = _layout(WIDTH, 230, 56, subtitle, [(s.label, s.colour) for s in series], [""])
    values = [v for s in series for p in s.points for v in (p.y, p.low, p.high) if v is not None]
    lo, hi = y_range or (min(values, default=0.0), max(values, default=1.0))
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    head = _open(name, title, frame, subtitle, legend, x_label, y_label)
    parts = [head, _y_axis(frame, ticks, lo, hi, y_format)]
    for value, label in x_ticks:
        x = frame.sx(value, *x_range)
        parts.append(el("line", x1=x, x2=x, y1=frame.base, y2=frame.base + 4, stroke=AXIS))
        parts.append(el("text", esc(label), x=x, y=frame.base + 15, font_size=10, text_anchor="middle"))
    ends = [-1e9] * 3  # a marker's label goes in the first of three rows where it overlaps nothing
    for marker in sorted(markers, key=lambda m: m.x):
        x, text = frame.sx(marker.x, *x_range), short(marker.label, 14)
        row = next((r for r in range(3) if x > ends[r] + 4), None)
        label = ""
        if row is not None:
            ends[row] = x + 6 * len(text)
            label = el("text", esc(text), x=x + 3, y=frame.top + 10 + 11 * row, font_size=9)
        dashed = {"stroke": AXIS, "stroke_dasharray": "3"}
        line = el("line", class_="mark", x1=x, x2=x, y1=frame.top, y2=frame.base, **dashed)
        parts.append(el("g", tip(marker.tip or marker.label) + line + label, class_="marker"))
    parts += [_series(frame, s, x_range, (lo, hi)) for s in series]
    return "".join(parts) + "</svg>"


@dataclass(frozen=True)
class Group:
    """One set of bars (reference, batch; scored, rejected): a value per category, a colour."""

    label: str
    values: Sequence[float]
    colour: str
    colours: Sequence[str | None] = ()  # per-bar colour overrides (an unseen category)
    tips: Sequence[str] = ()

    def tip(self, i: int, default: str) -> str:
        return self.tips[i] if i < len(self.tips) else default


def _bar(text: str, x: float, y: float, width: float, height: float, fill: str) -> str:
    size = {"width": max(width, 1.0), "height": max(height, 0.0)}
    return el("rect", tip(text), class_="mark", x=x, y=y, fill=fill, **size)


def grouped_bars(name: str, title: str, categories: Sequence[str], groups: Sequence[Group], *, x_label: str,
                 y_label: str, value_format: Callable[[float], str] = percent, subtitle: str = "",
                 width: int = WIDTH) -> str:  # fmt: skip
    """Side-by-side bars per category: the reference's share beside the batch's."""
    frame, legend = _layout(width, 150, 56, subtitle, [(g.label, g.colour) for g in groups], categories)
    top = max([v for g in groups for v in g.values] + [1e-9]) * 1.08
    ticks = nice_ticks(0.0, top, 4)
    hi = max(top, ticks[-1])
    slot = frame.inner_width / max(1, len(categories))
    bar = slot * 0.8 / max(1, len(groups))
    head = _open(name, title, frame, subtitle, legend, x_label, y_label)
    parts = [head, _y_axis(frame, ticks, 0.0, hi, value_format)]
    for i, category in enumerate(categories):
        for j, g in enumerate(groups):
            y = frame.sy(g.values[i], 0.0, hi)
            colour = (g.colours[i] if i < len(g.colours) else None) or g.colour
            text = g.tip(i, f"{category}: {g.label} {value_format(g.values[i])}")
            parts.append(
                _bar(text, frame.left + i * slot + slot * 0.1 + j * bar, y, bar - 1, frame.base - y, colour)
            )
    parts.append(_x_labels(frame, categories, lambda i: frame.left + (i + 0.5) * slot))
    return "".join(parts) + "</svg>"


def stacked_bars(name: str, title: str, labels: Sequence[str], stacks: Sequence[Group], *, x_label: str,
                 y_label: str) -> str:  # fmt: skip
    """One bar per label, its groups stacked (rows scored under rows rejected, per batch)."""
    shown = _thinned(labels)
    frame, legend = _layout(
        WIDTH, 150, 64, "", [(g.label, g.colour) for g in stacks], list(filter(None, shown))
    )
    totals = [sum(g.values[i] for g in stacks) for i in range(len(labels))]
    ticks = nice_ticks(0.0, max([*totals, 1.0]), 4)
    hi = max([*totals, ticks[-1]])
    slot = frame.inner_width / max(1, len(labels))
    parts = [_open(name, title, frame, "", legend, x_label, y_label), _y_axis(frame, ticks, 0.0, hi, number)]
    for i, label in enumerate(labels):
        bottom = 0.0
        for g in [g for g in stacks if g.values[i] > 0]:
            y0, y1 = frame.sy(bottom, 0.0, hi), frame.sy(bottom + g.values[i], 0.0, hi)
            text = g.tip(i, f"{label}: {number(g.values[i])} {g.label}")
            x = frame.left + (i + 0.15) * slot
            parts.append(_bar(text, x, y1, slot * 0.7, max(y0 - y1, 0.5), g.colour))
            bottom += g.values[i]
    parts.append(_x_labels(frame, shown, lambda i: frame.left + (i + 0.5) * slot))
    return "".join(parts) + "</svg>"


@dataclass(frozen=True)
class Cell:
    """One heatmap cell: its value (None: nothing to show), whether it is marked, its tooltip."""

    value: float | None
    marked: bool = False
    tip: str = ""


@dataclass(frozen=True)
class Scale:
    """Colour stops (value, colour), linear between them and clamped outside; `label` names the value."""

    stops: Sequence[tuple[float, str]]
    label: str

    def colour(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return MISSING
        if value <= self.stops[0][0]:
            return self.stops[0][1]
        for (v0, c0), (v1, c1) in itertools.pairwise(self.stops):
            if value <= v1:
                t = (value - v0) / ((v1 - v0) or 1.0)
                pairs = [(int(c0[k : k + 2], 16), int(c1[k : k + 2], 16)) for k in (1, 3, 5)]
                return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in pairs)
        return self.stops[-1][1]


def heatmap(name: str, title: str, rows: Sequence[str], columns: Sequence[str],
            cells: Sequence[Sequence[Cell]], *, x_label: str, y_label: str, scale: Scale,
            marked_label: str = "marked") -> str:  # fmt: skip
    """A row per feature (`<g class="row">`), a column per batch, coloured by `scale`; marked cells framed."""
    left = 24 + min(150, 12 + 6 * max((len(short(r, 22)) for r in rows), default=4))
    shown = _thinned(columns)
    frame, _ = _layout(WIDTH, 18 * len(rows) + 10, left, scale.label, [], [c for c in shown if c])
    width = frame.inner_width / max(1, len(columns))
    parts = [_open(name, title, frame, scale.label, [], x_label, y_label)]
    lo, hi = scale.stops[0][0], scale.stops[-1][0]
    for step in range(9):  # the colour legend, then what a frame and grey mean
        value, x = lo + (hi - lo) * step / 8, frame.left + 24 * step
        parts.append(el("rect", x=x, y=42, width=22, height=8, fill=scale.colour(value)))
        parts.append(el("text", esc(number(value, 2)), x=x + 11, y=60, font_size=9, text_anchor="middle"))
    x = frame.left + 24 * 9
    parts.append(el("rect", x=x + 16, y=41, width=10, height=10, fill="none", stroke=INK, stroke_width=2))
    parts.append(el("text", esc(marked_label), x=x + 30, y=50, font_size=10, fill=INK))
    parts.append(el("rect", x=x + 90, y=41, width=10, height=10, fill=MISSING))
    parts.append(el("text", "no rows", x=x + 104, y=50, font_size=10, fill=INK))
    for r, row in enumerate(rows):
        y = frame.top + 10 + 18 * r
        marks = [el("text", tip(row) + esc(short(row, 22)), x=frame.left - 6, y=y + 13, text_anchor="end")]
        for c, cell in enumerate(cells[r]):
            edge = {"stroke": INK, "stroke_width": 2} if cell.marked else {"stroke": "#fff"}
            marks.append(el("rect", tip(cell.tip), class_="mark", x=frame.left + c * width, y=y, width=width,
                            height=18, fill=scale.colour(cell.value), **edge))  # fmt: skip
        parts.append(el("g", "".join(marks), class_="row", data_row=row, fill=INK))
    parts.append(_x_labels(frame, shown, lambda i: frame.left + (i + 0.5) * width))
    return "".join(parts) + "</svg>"
