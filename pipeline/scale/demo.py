"""``make scale-demo N=…``: N sandbox accounts backfilled in parallel by Celery workers and the Dagster daemon.

On loopback (deploy/services.sh): Dagster's storage in its own PostgreSQL database, Celery's broker in Redis, the
shared weight budget in PostgreSQL, the lake on the S3 server (its own prefix). The N accounts (own uid, key
and history) sit behind one sandbox port, so they share one per-IP limit. The demo proves each account's lake
on S3 equals its truth, 0 × 429 and 0 × 418, one download id per account and market, and no credential in the
catalog, the lake's objects, Dagster's database or the logs; it prints the wall time against the same N accounts
run serially and stops everything it started, also on failure or Ctrl-C.
Design: docs/design/fleet.md §The scale demo.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow.fs as pafs

from pipeline.exports.ledger import ExportLedger
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.fleet import FleetSandbox
from pipeline.scale.processes import Processes
from pipeline.scale.verify import Comparison, compare
from pipeline.settings import Secret, child_environment
from pipeline.storage import lakefs
from pipeline.warehouse.catalog import build_catalog

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "deploy" / "services.sh"
DAGSTER_YAML = REPO / "deploy" / "celery" / "dagster.yaml"
MARKETS = ("spot", "usdm", "pm")
CELERY_DB = 3  # the Redis database of the demo's broker (tests use 0)
BUCKET = "orderlake-demo"


@dataclass(frozen=True)
class DemoConfig:
    accounts: int = 3
    workers: int = 2
    days: int = 30
    time_scale: float = 15.0  # an hour of Binance's export generation is 4 minutes here
    spot_weight_limit: int = 600  # per scaled minute: low enough that N accounts' probes meet the shared budget
    workdir: Path = REPO / "data" / "scale-demo"
    timeout_s: float | None = None  # the backfill's; default: 900 s, and 90 s per account-month beyond that
    keep: bool = False  # keep the demo's database, broker queue and files for inspection
    max_runs: int | None = None  # runs at once; default: two per worker

    @property
    def backfill_timeout_s(self) -> float:
        return self.timeout_s or max(900.0, 90.0 * self.accounts * self.days / 30)

    @property
    def runs_at_once(self) -> int:
        return self.max_runs or 2 * self.workers


@dataclass
class DemoResult:
    comparisons: list[Comparison] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    parallel_s: float = 0.0
    serial_s: float = 0.0
    serial_runs_s: float = 0.0  # the serial runs alone, without their process start and code load
    http_429: int = 0
    http_418: int = 0
    download_ids: dict[str, dict[str, int]] = field(default_factory=dict)
    canary_hits: list[str] = field(default_factory=list)
    partitions: int = 0

    @property
    def runs_window_s(self) -> float:
        """From the first run's start to the last run's end (the queue and the run processes' start excluded)."""
        starts = [x["start"] for x in self.runs if x.get("start")]
        ends = [x["end"] for x in self.runs if x.get("end")]
        return max(ends) - min(starts) if starts and ends else 0.0

    @property
    def ok(self) -> bool:
        return (
            all(c.equal for c in self.comparisons)
            and all(r.get("status") == "SUCCESS" for r in self.runs)
            and self.http_429 == self.http_418 == 0
            and all(v == 1 for ids in self.download_ids.values() for v in ids.values())
            and not self.canary_hits
        )


def _exports(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, value = line.removeprefix("export ").split("=", 1)
            out[name.strip()] = value.strip()
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(url: str) -> bool:
    import socket

    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 0)) == 0


def _services(env: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The loopback services' URLs; starts them if one is down. True if this call started them."""
    if not SERVICES.exists():
        raise FileNotFoundError(f"{SERVICES} is missing: it starts PostgreSQL, Redis and the S3 server on loopback")
    shown = _exports(subprocess.run([str(SERVICES), "env"], env=env, capture_output=True, text=True, check=True).stdout)
    urls = [shown[k] for k in ("ORDERLAKE_TEST_POSTGRES_URL", "ORDERLAKE_TEST_REDIS_URL", "ORDERLAKE_TEST_S3_ENDPOINT")]
    if all(_port_open(u) for u in urls):
        return shown, False
    subprocess.run([str(SERVICES), "install"], env=env, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(SERVICES), "start"], env=env, capture_output=True, text=True, check=True).stdout
    return _exports(out), True


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def _s3(services: dict[str, str]) -> lakefs.S3Access:
    return lakefs.S3Access(
        services["ORDERLAKE_TEST_S3_ENDPOINT"],
        lakefs.DEFAULT_REGION,
        Secret(services["ORDERLAKE_TEST_S3_KEY"]),
        Secret(services["ORDERLAKE_TEST_S3_SECRET"]),
    )


def _s3_env(access: lakefs.S3Access, lake_url: str) -> dict[str, str]:
    """The variables that put a process's lake on the demo's S3 prefix."""
    assert access.key is not None and access.secret is not None
    return {
        "ORDERLAKE_LAKE_URL": lake_url,
        "AWS_ENDPOINT_URL": str(access.endpoint),
        "AWS_REGION": access.region,
        "AWS_ACCESS_KEY_ID": access.key.reveal(),
        "AWS_SECRET_ACCESS_KEY": access.secret.reveal(),
    }


def _sandbox_configs(cfg: DemoConfig, run: str) -> list[SandboxConfig]:
    return [
        SandboxConfig().with_overrides(
            seed=100 + i,
            uid=700_000 + i,
            api_key=f"demo-key-{run}-{i}-{secrets.token_hex(8)}",
            api_secret=secrets.token_hex(24),
            listed_symbols=20,
            active_symbols=3,
            history_days=cfg.days,
            busy_day_orders=40,
            futures_history_days=cfg.days,
            time_scale=cfg.time_scale,
            spot_weight_limit=cfg.spot_weight_limit,
            export_link_ttl_seconds=30 * 86_400.0,
        )
        for i in range(cfg.accounts)
    ]


def _accounts_file(path: Path, names: list[str], sx: FleetSandbox, start: date) -> None:
    lines = [f'[defaults]\nstart_date = "{start}"\n[defaults.hosts]\n']
    lines.append(
        f'spot_url = "{sx.url}"\nws_api_url = "{sx.ws_url}"\nfutures_url = "{sx.url}"\npapi_url = "{sx.url}"\n'
    )
    for i, name in enumerate(names):
        lines.append(f'[accounts.{name}]\napi_key_env = "DEMO_{i}_API_KEY"\napi_secret_env = "DEMO_{i}_API_SECRET"\n')
    path.write_text("\n".join(lines))


def instance_yaml(src: Path, dst: Path, max_runs: int) -> None:
    """The deploy example with the demo's limit of runs at once. A run's process only hands its steps to the workers,
    so more runs than a couple per worker just wait for a worker; and on 2 cores, 20 run processes loading the code
    location at once could outlast run monitoring's start timeout, which fails a run that has not started."""
    import yaml

    config = yaml.safe_load(src.read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = max_runs
    dst.write_text(yaml.safe_dump(config, sort_keys=False))


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _launch(env: dict[str, str], args: list[str], log: Path, timeout_s: float) -> dict:
    with open(log, "ab") as err:
        done = subprocess.run(
            _python("-m", "assets.fleet.launch", *args), env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=err,
            timeout=timeout_s, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"launcher failed ({done.returncode}); see {log}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _wait_ready(procs: Processes, logs: Path, names: list[str], word: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs.check()
        if all(word in (logs / f"{n}.log").read_text(errors="replace") for n in names):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{', '.join(names)} not ready within {timeout_s:.0f} s (logs in {logs})")


def run_demo(cfg: DemoConfig, say: Callable[[str], None] = print) -> DemoResult:
    import psycopg2
    import redis

    run = secrets.token_hex(4)
    work = cfg.workdir / run
    logs, home, data, serial_data = work / "logs", work / "dagster_home", work / "data", work / "serial-data"
    for d in (logs, home, data, serial_data):
        d.mkdir(parents=True, exist_ok=True)
    names = [f"acct-{i:03d}" for i in range(cfg.accounts)]
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=cfg.days - 1)
    result = DemoResult()
    timeout_s = cfg.backfill_timeout_s
    base = child_environment({})
    services, started_services = _services(base)
    admin = services["ORDERLAKE_TEST_POSTGRES_URL"]
    database = f"orderlake_demo_{run}"
    pg = psycopg2.connect(admin)
    pg.autocommit = True
    pg.cursor().execute(f"CREATE DATABASE {database}")
    pg_url = _with_path(admin, f"/{database}")
    celery_url = _with_path(services["ORDERLAKE_TEST_REDIS_URL"], f"/{CELERY_DB}")
    broker = redis.Redis.from_url(celery_url)
    broker.flushdb()
    access = _s3(services)
    store = pafs.S3FileSystem(
        access_key=services["ORDERLAKE_TEST_S3_KEY"],
        secret_key=services["ORDERLAKE_TEST_S3_SECRET"],
        endpoint_override=urlsplit(services["ORDERLAKE_TEST_S3_ENDPOINT"]).netloc,
        scheme=urlsplit(services["ORDERLAKE_TEST_S3_ENDPOINT"]).scheme,
        region=lakefs.DEFAULT_REGION,
        allow_bucket_creation=True,
    )
    store.create_dir(BUCKET)
    lake_url, serial_lake_url = f"s3://{BUCKET}/{run}/lake", f"s3://{BUCKET}/{run}/serial-lake"
    instance_yaml(DAGSTER_YAML, home / "dagster.yaml", cfg.runs_at_once)
    sx = FleetSandbox(_sandbox_configs(cfg, run)).start()
    try:
        _accounts_file(work / "accounts.toml", names, sx, start)
        keys = {}
        for i, ex in enumerate(sx.exchanges):
            keys[f"DEMO_{i}_API_KEY"] = ex.cfg.api_key
            keys[f"DEMO_{i}_API_SECRET"] = str(ex.cfg.api_secret)
        env = (
            base
            | keys
            | {
                "DAGSTER_HOME": str(home),
                "ORDERLAKE_DAGSTER_PG_URL": pg_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                "ORDERLAKE_ACCOUNTS_FILE": str(work / "accounts.toml"),
                "ORDERLAKE_DATA_DIR": str(data),
                "ORDERLAKE_BUDGET_URL": pg_url,
                "ORDERLAKE_EXECUTOR": "celery",
                "ORDERLAKE_CELERY_URL": celery_url,
                "ORDERLAKE_TIME_SCALE": str(cfg.time_scale),
                "ORDERLAKE_ALLOW_HTTP_LOOPBACK": "1",
                **_s3_env(access, lake_url),
            }
        )
        with Processes(logs) as procs:
            workers = [f"worker-{i + 1}" for i in range(cfg.workers)]
            for i, name in enumerate(workers):
                argv = [_bin("celery"), "-A", "assets.fleet.celery_app", "worker", "-Q", "dagster", "-c", "1"]
                procs.start(
                    name, [*argv, "--prefetch-multiplier=1", "--loglevel=INFO", "-n", f"w{i + 1}-{run}@%h"], env, REPO
                )
            procs.start("daemon", [_bin("dagster-daemon"), "run", "-w", "workspace.yaml"], env, REPO)
            port = _free_port()
            argv = [_bin("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
            procs.start("webserver", argv, env, REPO)  # the runs are submitted through its GraphQL API
            say(
                f"scale demo {run}: {cfg.accounts} accounts × {cfg.days} days, {cfg.workers} Celery workers, "
                f"at most {cfg.runs_at_once} runs at once, daemon"
            )
            _wait_ready(procs, logs, workers, " ready.", timeout_s)
            _wait_ready(procs, logs, ["webserver"], "Serving dagster-webserver", timeout_s)
            t0 = time.monotonic()
            args = ["queue", f"--webserver=http://127.0.0.1:{port}", f"--start={start}", f"--end={end}"]
            queued = _launch(env, [*args, f"--wait={timeout_s}", *names], logs / "launch.log", timeout_s + 120)
            result.parallel_s = time.monotonic() - t0
            result.runs = queued["runs"]
            procs.check()
        stats = sx.stats()
        result.http_429, result.http_418 = stats["http_429"], stats["http_418"]
        ledger = ExportLedger(data)
        for name in names:
            result.download_ids[name] = {
                market: len({e.download_id for e in ledger.entries(market=market, kind="order", account=name)} - {None})
                for market in ("usdm", "pm_um")
            }
        lake = lakefs.bind(data, lakefs.from_url(lake_url, access))  # the catalog below reads it too
        for i, name in enumerate(names):
            truth = sx.truth(i)
            result.comparisons += [compare(lake.fs, lake.root, name, m, truth, start, end) for m in MARKETS]
        result.partitions = len(names) * cfg.days * 4  # spot orders, order lists, USDⓈ-M, PM per account-day
        build_catalog(data)
        say(f"parallel: {result.parallel_s:.1f} s; now the same {cfg.accounts} accounts serially, in one process")
        serial_env = env | {"ORDERLAKE_DATA_DIR": str(serial_data), "ORDERLAKE_EXECUTOR": "multiprocess"}
        serial_env |= _s3_env(access, serial_lake_url)
        t0 = time.monotonic()
        serial = _launch(serial_env, ["serial", f"--start={start}", f"--end={end}", *names], logs / "serial.log",
                         timeout_s * 2)  # fmt: skip
        result.serial_s = time.monotonic() - t0
        result.serial_runs_s = sum(r["seconds"] for r in serial["serial"])
        if not all(r["success"] for r in serial["serial"]):
            raise RuntimeError(f"the serial baseline failed: {serial}")
        secrets_ = [*keys.values(), *_passwords(services)]
        result.canary_hits = canary(secrets_, [work], pg_url) + objects_with(secrets_, store, f"{BUCKET}/{run}")
    finally:
        steps = [("the sandbox", sx.stop)]
        if not cfg.keep:
            steps += [
                (f"s3://{BUCKET}/{run}", lambda: store.delete_dir(f"{BUCKET}/{run}")),
                ("the broker's queue", broker.flushdb),
                (database, lambda: pg.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")),
            ]
        steps += [("the broker connection", broker.close), ("the PostgreSQL connection", pg.close)]
        if started_services:
            steps.append(("the services", lambda: subprocess.run([str(SERVICES), "stop"], env=base, check=False)))
        cleanup(steps, say)
    _report(cfg, result, say)
    return result


def cleanup(steps: list[tuple[str, Callable[[], object]]], say: Callable[[str], None]) -> None:
    """Every step, even after one fails (a prefix never written, a server gone): one that fails is reported and
    must not hide the error that ended the demo, nor keep the next steps from running."""
    for what, step in steps:
        try:
            step()
        except Exception as exc:  # reported: the demo's own outcome or error is what matters
            say(f"scale demo: could not clean up {what}: {type(exc).__name__}: {exc}")


def _passwords(services: dict[str, str]) -> list[str]:
    """The services' credentials: the object store's key id too (botocore's signed requests show it unless
    pipeline/storage/s3log.py redacts it), PostgreSQL's and Redis's passwords."""
    found = [services.get("ORDERLAKE_TEST_S3_KEY", ""), services.get("ORDERLAKE_TEST_S3_SECRET", "")]
    for key in ("ORDERLAKE_TEST_POSTGRES_URL", "ORDERLAKE_TEST_REDIS_URL"):
        found.append(urlsplit(services[key]).password or "")
    return [s for s in found if len(s) >= 8]


def canary(values: list[str], roots: list[Path], pg_url: str) -> list[str]:
    """Where any of ``values`` appears: every file under ``roots`` (lake, catalog, logs, Dagster's home) and every
    row of every table of Dagster's database."""
    return files_with(values, roots) + postgres_rows_with(values, pg_url)


def files_with(values: list[str], roots: list[Path]) -> list[str]:
    needles = [v.encode() for v in values if v]
    return [
        str(path)
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file() and any(n in path.read_bytes() for n in needles)
    ]


def objects_with(values: list[str], fs: pafs.FileSystem, root: str) -> list[str]:
    """Every object under ``root`` of the object store that holds one of ``values``."""
    needles = [v.encode() for v in values if v]
    hits = []
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as f:
                blob = f.read()
            hits += [f"s3://{info.path}" for n in needles if n in blob][:1]
    return hits


def postgres_rows_with(values: list[str], pg_url: str) -> list[str]:
    import psycopg2

    needles = [v for v in values if v]
    hits = []
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT t::text FROM "{table}" t')
            text = "\n".join(row[0] for row in cur.fetchall())
            hits += [f"postgres table {table}" for n in needles if n in text]
    return hits


def _report(cfg: DemoConfig, r: DemoResult, say: Callable[[str], None]) -> None:
    say("account   table           lake rows  truth rows  equal")
    for c in r.comparisons:
        say(f"{c.account:9} {c.table:15} {c.lake_rows:9}  {c.truth_rows:10}  {'yes' if c.equal else 'NO'}")
    first = min((x["start"] for x in r.runs if x.get("start")), default=0.0)

    def span(x: dict) -> str:
        return f"{(x.get('start') or first) - first:.0f}..{(x.get('end') or first) - first:.0f}"

    say(
        "runs (s after the first start): "
        + ", ".join(f"{x.get('account')}={x.get('status')} {span(x)}" for x in r.runs)
    )
    say(f"shared per-IP budget: {r.http_429} × 429, {r.http_418} × 418; download ids per account: {r.download_ids}")
    say(f"canary (keys, secrets, passwords in catalog, lake, Dagster's database, logs): {r.canary_hits or 'none'}")
    say(f"lakes on S3 (s3://{BUCKET}/<run>/lake), Dagster and the weight budget on PostgreSQL, the broker on Redis")
    per_worker = r.partitions / r.parallel_s / cfg.workers if r.parallel_s else 0.0
    say(
        f"wall time, end to end: parallel {r.parallel_s:.1f} s on {cfg.workers} Celery workers vs serial "
        f"{r.serial_s:.1f} s in one process ({r.serial_s / r.parallel_s if r.parallel_s else 0:.2f}× faster)"
    )
    say(
        f"wall time of the runs alone: parallel {r.runs_window_s:.1f} s (first start to last end) vs serial "
        f"{r.serial_runs_s:.1f} s; {r.partitions} account-day partitions, {per_worker:.2f} per second per worker"
    )
    say("scale demo: OK" if r.ok else "scale demo: FAILED")
