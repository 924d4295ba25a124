"""The daily-activity chart: orders and filled notional per UTC day and market, from the ``daily_activity`` view.

Uses matplotlib's object API with the Agg canvas directly (no pyplot): no global backend switch, no GUI, safe in
Dagster worker processes and threads. Values become floats only here, for drawing; the view stays exact.

Caveat shown on the chart: filled notional is in each symbol's quote asset, summed over symbols (mixing e.g. USDT
and BTC quotes); query ``daily_activity`` per symbol for exact per-asset figures.
"""

from __future__ import annotations

import base64
import os
from collections import defaultdict
from datetime import date
from pathlib import Path

from pipeline.storage.atomic import atomic_write
from pipeline.warehouse.catalog import CATALOG_FILE, build_catalog

REPORT_NAME = "daily_activity.png"
MARKET_COLORS = {"spot": "#f0b90b", "usdm": "#1e88e5", "pm_um": "#8e24aa"}
_QUERY = """
SELECT day, market, CAST(sum(orders) AS BIGINT) AS orders, sum(filled_notional) AS notional
FROM daily_activity WHERE day IS NOT NULL GROUP BY ALL ORDER BY day, market
"""


def load_daily_activity(data_dir: str | os.PathLike[str]) -> list[tuple[date, str, int, float]]:
    """(day, market, orders, filled notional) rows; builds the catalog first if there is none yet."""
    import duckdb

    path = Path(data_dir).resolve() / CATALOG_FILE
    if not path.exists():
        build_catalog(data_dir)
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(_QUERY).fetchall()
    finally:
        con.close()
    return [(d, m, int(n), float(v or 0)) for d, m, n, v in rows]


def _figure(rows: list[tuple[date, str, int, float]]):  # -> matplotlib.figure.Figure
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), dpi=90, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    if not rows:
        top.text(0.5, 0.5, "no orders in the lake yet", ha="center", va="center", transform=top.transAxes)
        bottom.set_axis_off()
        return fig
    days = sorted({r[0] for r in rows})
    by_market: dict[str, dict[date, tuple[int, float]]] = defaultdict(dict)
    for d, m, n, v in rows:
        by_market[m][d] = (n, v)
    markets = sorted(by_market, key=lambda m: (list(MARKET_COLORS).index(m) if m in MARKET_COLORS else 99, m))
    base_n, base_v = [0] * len(days), [0.0] * len(days)
    for m in markets:
        n = [by_market[m].get(d, (0, 0.0))[0] for d in days]
        v = [by_market[m].get(d, (0, 0.0))[1] for d in days]
        color = MARKET_COLORS.get(m)
        top.bar(days, n, bottom=base_n, width=1.0, label=m, color=color, linewidth=0)
        bottom.bar(days, v, bottom=base_v, width=1.0, label=m, color=color, linewidth=0)
        base_n = [a + b for a, b in zip(base_n, n, strict=True)]
        base_v = [a + b for a, b in zip(base_v, v, strict=True)]
    top.set_title(f"Orders placed per UTC day ({days[0]} .. {days[-1]}, {sum(base_n):,} orders)")
    top.set_ylabel("orders")
    top.legend(loc="upper left", fontsize="small")
    bottom.set_title("Filled notional per day (quote-asset units, summed over symbols)", fontsize="medium")
    bottom.set_ylabel("filled notional")
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
    return fig


def render_png(rows: list[tuple[date, str, int, float]]) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure(rows)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_daily_activity(data_dir: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None) -> Path:
    """Write the chart (default ``<data_dir>/reports/daily_activity.png``) atomically and return its path."""
    out = Path(out_path) if out_path is not None else Path(data_dir) / "reports" / REPORT_NAME
    png = render_png(load_daily_activity(data_dir))
    atomic_write(out, png)
    return out


def png_markdown(path: str | os.PathLike[str], alt: str = "daily activity") -> str:
    """Markdown with the PNG inlined as a data URI: ``MetadataValue.md(png_markdown(p))`` shows it in Dagster's UI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


def daily_activity_markdown(data_dir: str | os.PathLike[str]) -> tuple[Path, str]:
    """Render the chart and return (path, markdown) for asset metadata."""
    path = render_daily_activity(data_dir)
    return path, png_markdown(path)
