"""A million-row export is parsed and ingested in bounded memory (streamed in batches, never read whole).

Measured in a fresh subprocess (``ru_maxrss`` is a process-wide high-water mark, so neither pytest's memory nor
the file generator, which runs in a subprocess of its own, may count). The generated file is ~160 MB of CSV: a
reader that held it, or its Arrow table, would exceed the bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROWS = 1_000_000
DAYS = 28
# Peak RSS above the post-import baseline. Measured: parse ~110 MB, ingest ~240 MB (days encoded while parsing);
# before the reader's block size was bounded, ~410 / ~570 MB.
MAX_PARSE_GROWTH_MB = 200
MAX_INGEST_GROWTH_MB = 320

NAME = "Binance-Futures-Order-History-202403010000(UTC+8).csv"
GENERATE = r"""
import sys
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from pipeline.sandbox.export_dialects import API_HEADER as HEADER

rows, days, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(7)
secs = np.sort(rng.integers(0, days * 86400, rows)) + 1_709_251_200 + 8 * 3600  # 2024-03-01, local UTC+8
local = pc.strftime(pa.array(secs, pa.timestamp("s")), format="%Y-%m-%d %H:%M:%S")
ids = pc.cast(pa.array(np.arange(rows, dtype=np.int64) + 8_000_000_000_000_000_000), pa.string())
price = pc.cast(pa.array(rng.integers(1, 10**9, rows)), pa.string())
cols = ["354937868", local, ids, "BTCUSDT", "LIMIT", "BUY", "BOTH", price, price, "0.123", "0.123", "8118.0123",
        "0", "FILLED", ids, "GTC", "", "", local]
lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cols, ","), "\r\n", "")
with open(path, "wb") as fh:
    fh.write(("\ufeff" + HEADER + "\r\n").encode())
    offsets = np.frombuffer(lines.buffers()[1], np.int32)
    fh.write(memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]])
"""
MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
from pipeline.exports import ingest, parsing

path = Path(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
stats = parsing.ParseStats()
parsed = sum(b.num_rows for b in parsing.parse_export(path, market="usdm", account="main", stats=stats))
t1 = time.perf_counter()
after_parse = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = ingest.write_export_partitions(path, data_dir=path.parent / "data", table="futures_orders", market="usdm",
                                     account="main", download_id="1")
t2 = time.perf_counter()
print(json.dumps({"file_mb": path.stat().st_size / 2**20, "base_mb": base / 1024, "parse_peak_mb": after_parse / 1024,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "parsed": parsed,
                  "data_lines": stats.data_lines, "rows": res.rows, "partitions": len(res.partitions),
                  "parse_s": t1 - t0, "ingest_s": t2 - t1}))
"""


def _python(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", *args],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_million_row_export_parses_and_ingests_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / NAME
    _python(GENERATE, str(ROWS), str(DAYS), str(path))
    m = json.loads(_python(MEASURE, str(path)).strip().splitlines()[-1])
    print(f"\nexport memory: {m}  ({ROWS / m['parse_s']:,.0f} rows/s parse, {ROWS / m['ingest_s']:,.0f} rows/s ingest)")
    assert m["file_mb"] > 150
    assert m["parsed"] == m["data_lines"] == m["rows"] == ROWS and m["partitions"] in (DAYS, DAYS + 1)
    assert m["parse_peak_mb"] - m["base_mb"] < MAX_PARSE_GROWTH_MB
    assert m["peak_mb"] - m["base_mb"] < MAX_INGEST_GROWTH_MB


ONE_DAY_ROWS = 200_000
ONE_DAY = r"""
import json, sys
from pathlib import Path
import pyarrow as pa
from pipeline.exports import ingest
from pipeline.exports.parsing import blocks
from pipeline.storage import day_writer

def refuse(*args, **kwargs):
    raise AssertionError("a day's parts were concatenated in memory")

pa.concat_tables = refuse  # the day's parts must be streamed into the merge, never concatenated
day_writer.BUFFER_BYTES = 2 << 20  # the scale of the mechanism: the full-size figure is bench P3's
blocks.BATCHES_PER_BLOCK = 1  # so are the blocks in the parse's hands at once (a fixed amount, not the day's)
spills = []
spill = day_writer.DayWriter._spill
day_writer.DayWriter._spill = lambda self: (spills.append(1), spill(self))[1]
path = Path(sys.argv[1])
res = ingest.write_export_partitions(path, data_dir=path.parent / "data", table="futures_orders", market="usdm",
                                     account="main", download_id="1")
whole = sum(b.nbytes for b in ingest.parse_export(path, market="usdm", account="main"))
print(json.dumps({"rows": res.rows, "partitions": sorted(str(d) for d in res.partitions), "spills": len(spills),
                  "arrow_peak": pa.default_memory_pool().max_memory(), "whole": whole}))
"""


def test_a_one_day_export_is_merged_from_streamed_parts(tmp_path: Path) -> None:
    """Every row of the file on one UTC day: no day ever goes cold, so the day is spilled part by part and the parts
    stream into the merge; Arrow never holds the day whole (measured: the pool's high-water mark)."""
    path = tmp_path / NAME
    _python(GENERATE, str(ONE_DAY_ROWS), "1", str(path))
    m = json.loads(_python(ONE_DAY, str(path)).strip().splitlines()[-1])
    print(f"\none-day export: {m}")
    assert m["rows"] == ONE_DAY_ROWS and len(m["partitions"]) <= 2  # local midnight falls inside the UTC day
    assert m["spills"] >= 5
    assert m["arrow_peak"] < m["whole"] / 2
