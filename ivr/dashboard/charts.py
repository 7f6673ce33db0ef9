"""Bar charts as inline SVG, drawn on the server from our own figures (no script, no library).

Each chart has a title, an axis title on both axes, tick labels at a readable size that never
overlap (hour charts label every third hour; category charts put long names on the left, two
lines at most), and the same figures as a table beside it (`Chart.rows`), so nothing is shown
by the drawing alone. Colours come from classes in dashboard.css: the page's
Content-Security-Policy allows no inline styles, and SVG presentation attributes are enough.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 420
"""Chart width in SVG user units: near a phone's width, so 12-unit text stays ~12 px there."""

TICK_FONT = 12
"""Tick and value labels, in user units."""

TITLE_FONT = 13
"""Axis titles, in user units."""

COLUMN_AREA_HEIGHT = 150
"""Height of the tallest column."""

BAR_HEIGHT = 22
"""Thickness of one horizontal bar (category charts)."""

LABEL_CHARS = 20
"""Characters per line of a category label before it wraps (two lines at most)."""


@dataclass(frozen=True)
class Chart:
    """A drawn chart, its visible title and the table of the same figures."""

    chart_id: str
    title: str
    svg: Markup
    label_title: str
    value_title: str
    rows: tuple[tuple[str, str], ...]


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _fractions(top: float) -> tuple[float, ...]:
    """Where the axis gets a tick: ends, and the middle when it is a whole number."""
    return (0, 0.5, 1) if float(top / 2).is_integer() else (0, 1)


def _nice_top(top: float) -> float:
    """A round axis maximum at or above `top` (1, 2, 5 x 10^n)."""
    if top <= 0:
        return 1
    step = 1.0
    while step * 10 <= top:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= top:
            return step * factor
    return step * 10


def column_chart(
    chart_id: str,
    title: str,
    x_title: str,
    y_title: str,
    labels: Sequence[str],
    values: Sequence[float],
    tick_every: int = 1,
) -> Chart:
    """Vertical columns (hours, days): a tick label every `tick_every` columns."""
    count = max(len(values), 1)
    top = _nice_top(max([float(v or 0) for v in values] or [0]))
    left, right, top_pad = 52, 8, 20
    bottom = top_pad + COLUMN_AREA_HEIGHT
    height = bottom + 48
    slot = (WIDTH - left - right) / count
    bar = max(slot * 0.7, 2)
    cid = escape(chart_id)
    parts = [
        f'<svg id="{cid}" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{cid}-title">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{WIDTH - right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{bottom}"/>',
    ]
    for fraction in _fractions(top):
        y = bottom - COLUMN_AREA_HEIGHT * fraction
        parts.append(
            f'<text class="tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="{TICK_FONT}">{_fmt(top * fraction)}</text>'
        )
        if fraction:
            parts.append(
                f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}"/>'
            )
    show_values = count <= 12
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        v = float(value or 0)
        h = COLUMN_AREA_HEIGHT * v / top
        x = left + index * slot + (slot - bar) / 2
        y = bottom - h
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{_fmt(v)}">'
            f"<title>{escape(label)}: {_fmt(v)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"/>'
        )
        if show_values and v:
            parts.append(
                f'<text class="value" x="{x + bar / 2:.1f}" y="{y - 4:.1f}" '
                f'text-anchor="middle" font-size="{TICK_FONT}">{_fmt(v)}</text>'
            )
        if index % tick_every == 0:
            parts.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{bottom + 16}" '
                f'text-anchor="middle" font-size="{TICK_FONT}">{escape(label)}</text>'
            )
        parts.append("</g>")
    parts += [
        f'<text class="axis-title" x="{(left + WIDTH - right) / 2:.1f}" y="{height - 8}" '
        f'text-anchor="middle" font-size="{TITLE_FONT}">{escape(x_title)}</text>',
        f'<text class="axis-title" x="14" y="{(top_pad + bottom) / 2:.1f}" text-anchor="middle" '
        f'font-size="{TITLE_FONT}" transform="rotate(-90 14 {(top_pad + bottom) / 2:.1f})">'
        f"{escape(y_title)}</text>",
        "</svg>",
    ]
    svg = Markup("".join(parts))  # noqa: S704 - every label and title above is escaped
    rows = tuple((label, _fmt(float(v or 0))) for label, v in zip(labels, values, strict=True))
    return Chart(chart_id, title, svg, x_title, y_title, rows)


def bar_chart(
    chart_id: str,
    title: str,
    category_title: str,
    value_title: str,
    labels: Sequence[str],
    values: Sequence[float],
) -> Chart:
    """Horizontal bars for named categories: the name on the left (wrapped), the value after."""
    lines = [textwrap.wrap(label, LABEL_CHARS)[:2] or [""] for label in labels]
    for wrapped, label in zip(lines, labels, strict=True):
        if len(textwrap.wrap(label, LABEL_CHARS)) > 2:
            wrapped[-1] = wrapped[-1][: LABEL_CHARS - 1] + "…"
    label_width = 8 + TICK_FONT * 0.56 * max([len(w) for ls in lines for w in ls] or [1])
    left = max(label_width, 60)
    right = 44
    top_pad = 26
    row_height = BAR_HEIGHT + 14
    count = max(len(values), 1)
    bottom = top_pad + row_height * count
    height = bottom + 40
    top = _nice_top(max([float(v or 0) for v in values] or [0]))
    span = WIDTH - left - right
    cid = escape(chart_id)
    parts = [
        f'<svg id="{cid}" class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{cid}-title">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<text class="axis-title" x="4" y="16" font-size="{TITLE_FONT}">'
        f"{escape(category_title)}</text>",
        f'<line class="axis" x1="{left:.1f}" y1="{top_pad}" x2="{left:.1f}" y2="{bottom:.1f}"/>',
        f'<line class="axis" x1="{left:.1f}" y1="{bottom:.1f}" x2="{WIDTH - right}" '
        f'y2="{bottom:.1f}"/>',
    ]
    for fraction in _fractions(top):
        x = left + span * fraction
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 15:.1f}" text-anchor="middle" '
            f'font-size="{TICK_FONT}">{_fmt(top * fraction)}</text>'
        )
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        v = float(value or 0)
        w = span * v / top
        y = top_pad + index * row_height + 7
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{_fmt(v)}">'
            f"<title>{escape(label)}: {_fmt(v)}</title>"
            f'<rect x="{left:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR_HEIGHT}"/>'
            f'<text class="value" x="{left + w + 4:.1f}" y="{y + BAR_HEIGHT / 2 + 4:.1f}" '
            f'font-size="{TICK_FONT}">{_fmt(v)}</text>'
        )
        wrapped = lines[index]
        first_y = y + BAR_HEIGHT / 2 + 4 - (len(wrapped) - 1) * (TICK_FONT / 2 + 1)
        parts.append(
            f'<text class="tick" x="{left - 6:.1f}" y="{first_y:.1f}" text-anchor="end" '
            f'font-size="{TICK_FONT}">'
            + "".join(
                f'<tspan x="{left - 6:.1f}" dy="{0 if i == 0 else TICK_FONT + 2}">'
                f"{escape(text)}</tspan>"
                for i, text in enumerate(wrapped)
            )
            + "</text></g>"
        )
    parts += [
        f'<text class="axis-title" x="{left + span / 2:.1f}" y="{height - 8:.0f}" '
        f'text-anchor="middle" font-size="{TITLE_FONT}">{escape(value_title)}</text>',
        "</svg>",
    ]
    svg = Markup("".join(parts))  # noqa: S704 - every label and title above is escaped
    rows = tuple((label, _fmt(float(v or 0))) for label, v in zip(labels, values, strict=True))
    return Chart(chart_id, title, svg, category_title, value_title, rows)
