"""The daily-activity chart from the ``daily_activity`` view: orders per UTC day and market, then filled notional per
day in one panel per quote asset (amounts of different assets are never added), every panel on a log scale so one
busy day does not flatten the others.

matplotlib's object API with the Agg canvas (no pyplot): no global backend switch, safe in Dagster workers. Values
become floats only here, for drawing; the view stays exact.
"""

from __future__ import annotations

import base64
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.storage.atomic import atomic_write
from pipeline.storage.lakefs import connect_catalog
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog

REPORT_NAME = "daily_activity.png"
MARKET_COLORS = {"spot": "#d4a106", "usdm": "#1e88e5", "pm_um": "#8e24aa"}
MAX_ASSET_PANELS = 6
DAILY_QUERY = """
SELECT day, market, quote_asset, CAST(sum(orders) AS BIGINT) AS orders, sum(filled_notional) AS notional
FROM daily_activity
WHERE day IS NOT NULL
GROUP BY day, market, quote_asset
ORDER BY day, market, quote_asset
"""


@dataclass(frozen=True)
class DayRow:
    day: date
    market: str
    quote_asset: str | None  # None: the symbols' quote asset is unknown; their notional is not drawn
    orders: int
    notional: Decimal


def load_daily_activity(data_dir: str | os.PathLike[str]) -> list[DayRow]:
    """Rows per (day, market, quote asset); builds the catalog first if there is none yet."""

    path = Path(data_dir).resolve() / CATALOG_FILE
    if not path.exists():
        build_catalog(data_dir)
    con = connect_catalog(path)
    try:
        rows = con.execute(DAILY_QUERY).fetchall()
    finally:
        con.close()
    return [DayRow(d, m, a, int(n), v or Decimal(0)) for d, m, a, n, v in rows]


def _market_order(markets: Any) -> list[str]:
    return sorted(markets, key=lambda m: (list(MARKET_COLORS).index(m) if m in MARKET_COLORS else 99, m))


def _asset_panels(rows: list[DayRow]) -> tuple[list[str], list[str]]:
    """Quote assets to draw (most days with fills first) and those left out for space."""
    days_with_fills: dict[str, int] = defaultdict(int)
    for r in rows:
        if r.quote_asset is not None and r.notional > 0:
            days_with_fills[r.quote_asset] += 1
    ranked = sorted(days_with_fills, key=lambda a: (-days_with_fills[a], a))
    return ranked[:MAX_ASSET_PANELS], ranked[MAX_ASSET_PANELS:]


def plain_number(value: float, _pos: object = None) -> str:
    """A log-axis tick as people write it: 0.01, 5, 20k, 3M (not 10^4)."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def _figure(rows: list[DayRow]):  # -> matplotlib.figure.Figure
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    assets, left_out = _asset_panels(rows)
    fig = Figure(figsize=(11, 2.6 + 1.9 * max(len(assets), 1)), dpi=100, layout="constrained")
    axes = fig.subplots(1 + max(len(assets), 1), 1, sharex=True, squeeze=False)[:, 0]
    top = axes[0]
    if not rows:
        top.text(0.5, 0.5, "no orders in the lake yet", ha="center", va="center", transform=top.transAxes)
        for ax in axes[1:]:
            ax.set_axis_off()
        return fig
    days = sorted({r.day for r in rows})
    orders: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    notional: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows:
        orders[r.market][r.day] += r.orders
        if r.quote_asset is not None:
            notional[(r.quote_asset, r.market)][r.day] += r.notional
    total = sum(r.orders for r in rows)
    for market in _market_order(orders):
        series = [orders[market].get(d, 0) or math.nan for d in days]  # log scale: no point for a zero day
        top.plot(days, series, ".-", lw=0.9, ms=2.5, color=MARKET_COLORS.get(market), label=market)
    top.set_yscale("log")
    top.set_title(f"Orders placed per UTC day, {days[0]} to {days[-1]} ({total:,} orders)  ·  log scale", loc="left")
    top.set_ylabel("orders (log)")
    top.legend(loc="upper left", fontsize="small", ncols=3)
    for ax, asset in zip(axes[1:], assets, strict=False):
        for market in _market_order(m for a, m in notional if a == asset):
            per_day = notional[(asset, market)]
            series = [float(per_day[d]) if per_day.get(d) else math.nan for d in days]
            ax.plot(days, series, ".-", lw=0.9, ms=2.5, color=MARKET_COLORS.get(market), label=market)
        ax.set_yscale("log")
        ax.set_ylabel(f"{asset} (log)")
        ax.set_title(f"Filled notional per day in {asset}  ·  log scale", loc="left", fontsize="medium")
        ax.legend(loc="upper left", fontsize="x-small", ncols=3)
    if not assets:
        axes[1].text(
            0.5, 0.5, "no fills with a known quote asset", ha="center", va="center", transform=axes[1].transAxes
        )
    notes = _notes(rows, left_out)
    if notes:
        fig.text(0.01, 0.002, notes, fontsize="small", color="#555555", va="bottom")
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for ax in axes:
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.yaxis.set_major_formatter(FuncFormatter(plain_number))
    return fig


def _notes(rows: list[DayRow], left_out: list[str]) -> str:
    notes = []
    unknown = sum(r.orders for r in rows if r.quote_asset is None)
    if unknown:
        notes.append(
            f"{unknown:,} orders of symbols whose quote asset is unknown are counted above, their notional not drawn"
        )
    if left_out:
        notes.append(f"not drawn for space: {', '.join(left_out)} (query daily_activity)")
    return ";  ".join(notes)


def render_png(rows: list[DayRow]) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(rows)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def png_markdown(path: str | os.PathLike[str], alt: str = "daily activity") -> str:
    """Markdown with the PNG inlined as a data URI: ``MetadataValue.md(png_markdown(p))`` shows it in Dagster's UI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


INLINE_MARKDOWN_LIMIT = 1000  # Dagster's UI shows a markdown value inline below this many characters (else a button)


def _amount(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def summary_markdown(rows: list[DayRow], days: int = 7) -> str:
    """The last ``days`` UTC days per quote asset as a markdown table short enough for Dagster to show inline."""
    if not rows:
        return "No orders in the lake yet."
    last = sorted({r.day for r in rows})[-days:]
    per_asset: dict[str | None, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for r in rows:
        if r.day in last:
            per_asset[r.quote_asset][0] += r.orders
            per_asset[r.quote_asset][1] += r.notional
    title = f"**Last {len(last)} UTC days with orders** ({last[0]} to {last[-1]}), filled notional per quote asset:"
    lines = [title, "", "| quote asset | orders | filled notional |", "|---|---:|---:|"]
    for asset in sorted(per_asset, key=lambda a: (a is None, a or "")):
        orders, notional = per_asset[asset]
        shown = _amount(notional) if asset is not None else "not summed"
        row = f"| {asset or 'unknown'} | {orders:,} | {shown} |"
        if sum(len(x) + 1 for x in lines) + len(row) + 40 > INLINE_MARKDOWN_LIMIT:
            lines.append("| … | | |")
            break
        lines.append(row)
    return "\n".join(lines)


@dataclass(frozen=True)
class ChartReport:
    """The chart file, its markdown (a data-URI image: one click in Dagster's UI) and the inline summary."""

    path: Path
    chart_markdown: str
    summary_markdown: str


def daily_activity_report(data_dir: str | os.PathLike[str]) -> ChartReport:
    """Render the chart to ``<data_dir>/reports/daily_activity.png`` and return it with its markdown for metadata."""
    rows = load_daily_activity(data_dir)
    path = Path(data_dir) / "reports" / REPORT_NAME
    atomic_write(path, render_png(rows))
    alt = "orders per day and filled notional per quote asset (log scale)"
    return ChartReport(path, png_markdown(path, alt), summary_markdown(rows))
