"""Who an account of a data dir is: its Binance uid, the API hosts and a fingerprint of the key (never the secret).

The first backfill of an account records it in ``state/identity.json`` and in the lake (``_orderlake/identity/``,
which outlives a data dir and is shared by every data dir writing to one lake); every later run compares both
before it spends weight or quota, and refuses a different account with one message naming both identities. The state
that decides what to fetch (the export ledger, the spot symbol index, the futures REST state) is stamped with the
account's :attr:`Identity.scope` and shows an identity only its own stamps, so a sandbox's ledger never marks a real
account's days done, even with identity.json deleted. Design: docs/design/identity.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from pipeline.errors import ConfigurationError
from pipeline.storage import lakefs
from pipeline.storage.atomic import atomic_write
from pipeline.times import fmt_ms, now_ms

IDENTITY_FILE = "identity.json"
DEMO_MARK = "sandbox_demo.json"  # `make run` anchors its sandbox account in this file of state/
LAKE_RECORDS = "_orderlake/identity"  # <lake>/_orderlake/identity/<account>.json: no table's prefix


class IdentityMismatch(ConfigurationError):
    """The data dir's account belongs to another Binance account (or exchange) than this key."""


@dataclass(frozen=True)
class Identity:
    uid: int | None  # None if no account endpoint said it (the key then identifies the account)
    hosts: tuple[str, ...]  # scheme://host[:port] of spot, futures and PM: a sandbox is not api.binance.com
    key: str  # first 16 hex digits of sha256(api key): enough to tell keys apart, useless to an attacker

    def describe(self) -> str:
        who = f"uid {self.uid}" if self.uid is not None else "uid unknown"
        return f"{who} at {', '.join(dict.fromkeys(self.hosts))} (key {self.key})"

    @property
    def scope(self) -> str:
        """The key the account's state is stamped with: the uid where uids are unique (a sandbox, or one exchange's
        domains), so a rotated key or another of the exchange's hosts keeps it; without a uid, the key and hosts."""
        if self.uid is not None:
            return f"uid{self.uid}@{realm(self.hosts)}"
        return f"key{self.key}@{'+'.join(sorted(set(self.hosts)))}"

    def same_account(self, other: Identity) -> bool:
        """One Binance account: the same uid when both know it, else the same key on the same hosts."""
        if self.uid is not None and other.uid is not None:
            return self.uid == other.uid and _loopback(self.hosts) == _loopback(other.hosts)
        return self.key == other.key and self.hosts == other.hosts


def _loopback(hosts: tuple[str, ...]) -> bool:
    """Whether the hosts are a loopback sandbox (True) or a real exchange (False): a uid is only unique per side."""
    return all(urlsplit(h).hostname in ("127.0.0.1", "localhost", "::1") for h in hosts)


def realm(hosts: tuple[str, ...]) -> str:
    """``loopback`` for a sandbox, else the domains of the hosts (``binance.com`` for api, api1, fapi, papi...)."""
    if _loopback(hosts):
        return "loopback"
    return "+".join(sorted({".".join((urlsplit(h).hostname or "").split(".")[-2:]) for h in hosts}))


def fingerprint(api_key: str | None) -> str:
    return hashlib.sha256((api_key or "").encode()).hexdigest()[:16] if api_key else "none"


def hosts_of(*urls: str) -> tuple[str, ...]:
    return tuple(f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in urls)


def identity_path(data_dir: Path) -> Path:
    return data_dir / "state" / IDENTITY_FILE


def recorded(data_dir: Path, account: str) -> Identity | None:
    entry = accounts(data_dir).get(account)
    return None if entry is None else _identity(entry)


def _identity(entry: dict) -> Identity:
    return Identity(entry.get("uid"), tuple(entry.get("hosts", ())), entry.get("key", "none"))


def record(data_dir: Path, account: str, identity: Identity, scope: str | None = None) -> None:
    """Record ``identity`` for ``account``; ``scope`` keeps the stamp of the account's state when the same account
    is recorded anew (a rotated key, a uid learnt later)."""
    path = identity_path(data_dir)
    doc = json.loads(path.read_text()) if path.exists() else {}
    entry = {**asdict(identity), "scope": scope or identity.scope, "recorded_at": fmt_ms(now_ms())}
    doc.setdefault("accounts", {})[account] = entry
    atomic_write(path, json.dumps(doc, indent=2, sort_keys=True))


def _lake_record_path(data_dir: Path, account: str) -> tuple[lakefs.LakeLocation, str]:
    where = lakefs.location(data_dir)
    return where, where.path(LAKE_RECORDS, f"{account}.json")


def lake_recorded(data_dir: Path, account: str) -> Identity | None:
    """The identity the lake records for ``account`` (None: no record, e.g. a lake from before the record)."""
    where, path = _lake_record_path(data_dir, account)
    if not where.is_file(path):
        return None
    with where.fs.open_input_stream(path) as stream:
        return _identity(json.loads(stream.read()))


def record_in_lake(data_dir: Path, account: str, identity: Identity, scope: str) -> None:
    where, path = _lake_record_path(data_dir, account)
    body = json.dumps({**asdict(identity), "scope": scope, "recorded_at": fmt_ms(now_ms())}, indent=2, sort_keys=True)
    if where.is_local:
        atomic_write(Path(path), body)
    else:
        where.put(pa.py_buffer(body.encode()), path)  # one PUT: a reader sees the old record or the new one


def accounts(data_dir: str | os.PathLike[str]) -> dict:
    """identity.json's accounts, read afresh every time (a few hundred bytes): another process may record one."""
    try:
        return json.loads(identity_path(Path(data_dir)).read_text()).get("accounts", {})
    except FileNotFoundError:
        return {}


def owner(data_dir: str | os.PathLike[str], account: str) -> str | None:
    """The scope ``account``'s state is stamped with now, or None while no identity is recorded for it."""
    entry = accounts(data_dir).get(account)
    if entry is None:
        return None
    return entry.get("scope") or _identity(entry).scope


def owns(stamp: str | None, scope: str | None) -> bool:
    """Whether state stamped ``stamp`` belongs to the account whose scope is ``scope``: state stamped before
    identities keyed it (None) belongs to whoever identity.json records, and is stamped on its next write."""
    return stamp is None or stamp == scope


def mismatch_message(data_dir: Path, account: str, stored: Identity, current: Identity) -> str:
    return (
        f"data dir {data_dir}, account {account!r} holds Binance {stored.describe()}, but the configured key is "
        f"{current.describe()}. Nothing was fetched. Give this account its own ORDERLAKE_ACCOUNT (e.g. "
        f"ORDERLAKE_ACCOUNT=uid{current.uid if current.uid is not None else current.key}) or ORDERLAKE_DATA_DIR, "
        f"or point the BINANCE_* settings back at the recorded account."
    )


def lake_mismatch_message(data_dir: Path, account: str, stored: Identity, current: Identity) -> str:
    lake = lakefs.location(data_dir).url
    return (
        f"the lake {lake}, account {account!r}, holds Binance {stored.describe()} (recorded there by another data "
        f"dir, or before {data_dir}/state/{IDENTITY_FILE} was deleted), but the configured key is "
        f"{current.describe()}. Nothing was fetched. Give this account its own ORDERLAKE_ACCOUNT (e.g. "
        f"ORDERLAKE_ACCOUNT=uid{current.uid if current.uid is not None else current.key}) or ORDERLAKE_LAKE_URL, "
        "or point the BINANCE_* settings back at the recorded account."
    )


def demo_message(data_dir: Path, account: str, current: Identity) -> str:
    return (
        f"data dir {data_dir}, account {account!r} holds the sandbox demo of `make run` (no identity recorded, "
        f"{DEMO_MARK} present), and the configured key is Binance {current.describe()}. Nothing was fetched. "
        "Use another ORDERLAKE_DATA_DIR (or ORDERLAKE_ACCOUNT) for your account, or delete the demo's data dir."
    )


def verify(data_dir: Path, account: str, current: Identity) -> None:
    """Record ``current`` on first use; raise :class:`IdentityMismatch` if the data dir's or the lake's account is
    another one. The same account with a new key or host is recorded anew (keys get rotated)."""
    stored = recorded(data_dir, account)
    if stored is not None and not stored.same_account(current):
        raise IdentityMismatch(mismatch_message(data_dir, account, stored, current))
    in_lake = lake_recorded(data_dir, account)
    if in_lake is not None and not in_lake.same_account(current):
        raise IdentityMismatch(lake_mismatch_message(data_dir, account, in_lake, current))
    if stored is None:
        # a data dir `make run` filled before identities were recorded: the demo's, unless this is a sandbox too
        if (data_dir / "state" / DEMO_MARK).exists() and not _loopback(current.hosts):
            raise IdentityMismatch(demo_message(data_dir, account, current))
        record(data_dir, account, current)
    elif stored != current and current.uid is not None:
        record(data_dir, account, current, owner(data_dir, account))
    if in_lake is None or (in_lake != current and current.uid is not None):
        record_in_lake(data_dir, account, current, owner(data_dir, account) or current.scope)


def guard(data_dir: Path, account: str, hosts: tuple[str, ...], key: str, uid: Callable[[], int | None]) -> None:
    """:func:`verify`, asking Binance for the uid (one signed account call) only when the recorded identities do
    not already match this key on these hosts: a key belongs to one account, so the usual run costs nothing but
    one read of the lake's record."""
    stored, in_lake = recorded(data_dir, account), lake_recorded(data_dir, account)
    if all(i is not None and i.key == key and i.hosts == hosts for i in (stored, in_lake)):
        return
    verify(data_dir, account, Identity(uid(), hosts, key))
