"""Bar charts as inline SVG, drawn on the server from our own figures (no script, no library).

Colours come from classes in dashboard.css: the page's Content-Security-Policy allows no
inline styles, and SVG presentation attributes are enough for geometry.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 720
"""Chart width in SVG user units (it scales with the page)."""

BAR_AREA_HEIGHT = 160
"""Height of the tallest bar."""


def bar_chart(
    chart_id: str, title: str, labels: Sequence[str], values: Sequence[float], unit: str = ""
) -> Markup:
    """A vertical bar chart with a label under each bar and the value on top of it."""
    count = max(len(values), 1)
    top = max([v for v in values if v is not None] or [0]) or 1
    left, bottom_pad, top_pad = 36, 28, 22
    slot = (WIDTH - left - 8) / count
    bar = max(slot * 0.7, 2)
    height = BAR_AREA_HEIGHT + top_pad + bottom_pad
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="{escape(chart_id)}-title">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<line class="axis" x1="{left}" y1="{top_pad + BAR_AREA_HEIGHT}" x2="{WIDTH - 4}" '
        f'y2="{top_pad + BAR_AREA_HEIGHT}"/>',
        f'<text class="tick" x="{left - 4}" y="{top_pad + 4}" text-anchor="end">{_fmt(top)}</text>',
    ]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        v = value or 0
        h = BAR_AREA_HEIGHT * v / top
        x = left + index * slot + (slot - bar) / 2
        y = top_pad + BAR_AREA_HEIGHT - h
        tip = f"{label}: {_fmt(v)}{unit}"
        parts.append(
            f'<g class="bar" data-label="{escape(label)}" data-value="{_fmt(v)}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"/>'
            + (
                f'<text class="value" x="{x + bar / 2:.1f}" y="{y - 3:.1f}" '
                f'text-anchor="middle">{_fmt(v)}</text>'
                if v and count <= 31
                else ""
            )
            + f'<text class="tick" x="{x + bar / 2:.1f}" y="{height - 10}" '
            f'text-anchor="middle">{escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title above is escaped


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
