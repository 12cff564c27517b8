"""Server-drawn SVG charts for the admin (no script, no CDN: they render under the admin's
Content-Security-Policy, which allows no third-party asset).

`daily_totals_svg` draws one bar per local day with data: delivered energy above the axis,
received (solar export, flowDirection 19) below it, and a red tick under each day with no
data. Every bar is a `rect.mark` holding `data-day`, with a `<title>` for the hover text.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.utils.html import escape

WIDTH = 960
HEIGHT = 260
MARGIN_LEFT = 56
MARGIN_BOTTOM = 28
MARGIN_TOP = 12


def _fmt(value: float) -> str:
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def daily_totals_svg(
    *,
    first_day: date,
    last_day: date,
    delivered: dict[date, float],
    received: dict[date, float],
    unit: str,
) -> str:
    """The SVG text (safe to embed: every label is escaped)."""
    days = (last_day - first_day).days + 1
    plot_w = WIDTH - MARGIN_LEFT - 8
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    step = plot_w / max(days, 1)
    bar_w = max(step - 0.4, 0.6)
    top = max([*delivered.values(), 0.0]) or 1.0
    bottom = max([*received.values(), 0.0])
    scale = plot_h / (top + bottom) if top + bottom else 1.0
    axis_y = MARGIN_TOP + top * scale
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gascap-chart" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="daily totals from {first_day} to {last_day} in {escape(unit)}">',
        f'<text x="4" y="{MARGIN_TOP + 8}" font-size="11">'
        f"{escape(_fmt(top))} {escape(unit)}</text>",
        f'<line x1="{MARGIN_LEFT}" y1="{axis_y:.1f}" x2="{WIDTH - 8}" y2="{axis_y:.1f}" '
        'stroke="#666" stroke-width="0.6"/>',
    ]
    if bottom:
        parts.append(
            f'<text x="4" y="{HEIGHT - MARGIN_BOTTOM}" font-size="11">'
            f"-{escape(_fmt(bottom))} {escape(unit)}</text>"
        )
    for index in range(days):
        day = first_day + timedelta(days=index)
        x = MARGIN_LEFT + index * step
        if day.day == 1:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" font-size="10">{day:%b %y}</text>')
        has_in, has_out = day in delivered, day in received
        if not has_in and not has_out:
            parts.append(
                f'<rect class="missing" data-day="{day}" x="{x:.1f}" '
                f'y="{HEIGHT - MARGIN_BOTTOM + 2}" width="{bar_w:.2f}" height="5" fill="#c0392b">'
                f"<title>{day}: no data</title></rect>"
            )
            continue
        title = f"{day}: delivered {_fmt(delivered.get(day, 0.0))} {unit}"
        if has_out:
            title += f", received {_fmt(received[day])} {unit}"
        height_in = delivered.get(day, 0.0) * scale
        height_out = received.get(day, 0.0) * scale
        parts.append(
            f'<rect class="mark" data-day="{day}" x="{x:.1f}" y="{axis_y - height_in:.1f}" '
            f'width="{bar_w:.2f}" height="{max(height_in, 0.5):.1f}" fill="#2e86c1">'
            f"<title>{escape(title)}</title></rect>"
        )
        if has_out and height_out:
            parts.append(
                f'<rect class="received" x="{x:.1f}" y="{axis_y:.1f}" width="{bar_w:.2f}" '
                f'height="{height_out:.1f}" fill="#f39c12"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(bars: list[tuple[str, float, str]], *, width: int = 420, height: int = 140) -> str:
    """A small bar chart: (label, value, link) per bar; each bar is a link to its list."""
    top = max([v for _, v, _ in bars] + [0.0]) or 1.0
    slot = (width - 10) / max(len(bars), 1)
    plot = height - 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gascap-bars" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]
    for index, (label, value, link) in enumerate(bars):
        x = 5 + index * slot
        h = value / top * plot
        bar = (
            f'<rect class="mark" x="{x + 4:.1f}" y="{16 + plot - h:.1f}" width="{slot - 8:.1f}" '
            f'height="{max(h, 0.5):.1f}" fill="#2e86c1"><title>{escape(label)}: '
            f"{value:,.0f}</title></rect>"
            f'<text x="{x + slot / 2:.1f}" y="{13 + plot - h:.1f}" font-size="10" '
            f'text-anchor="middle">{value:,.0f}</text>'
        )
        if link:
            bar = f'<a href="{escape(link)}">{bar}</a>'
        parts.append(bar)
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{height - 8}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
