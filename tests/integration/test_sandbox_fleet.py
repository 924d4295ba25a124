"""Several sandbox accounts behind one port: each request reaches the account of its key, every account's weight
counts against one per-IP limit, and each account's export files are served from that port."""

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.fleet import FleetSandbox
from pipeline.sandbox.testing import SignedClient

SMALL = {"listed_symbols": 8, "active_symbols": 2, "history_days": 3, "busy_day_orders": 5, "futures_history_days": 5}


def _configs(n: int) -> list[SandboxConfig]:
    return [
        SandboxConfig().with_overrides(seed=20 + i, uid=5000 + i, api_key=f"key-{i}", api_secret=f"secret-{i}", **SMALL)
        for i in range(n)
    ]


def test_each_key_reaches_its_own_account_and_weight_is_shared() -> None:
    with FleetSandbox(_configs(2)) as sx:
        a, b = (SignedClient(sx.url, f"key-{i}", f"secret-{i}") for i in range(2))
        ua = a.get("/api/v3/account", {"omitZeroBalances": "true"})
        ub = b.get("/api/v3/account", {"omitZeroBalances": "true"})
        assert ua.status_code == ub.status_code == 200
        assert (ua.json()["uid"], ub.json()["uid"]) == (5000, 5001)
        used_a = int(ua.headers["X-MBX-USED-WEIGHT-1M"])
        assert int(ub.headers["X-MBX-USED-WEIGHT-1M"]) > used_a  # b's call counted on top of a's: one IP, one limit
        # a's key with b's secret is a bad signature, not b's account
        wrong = SignedClient(sx.url, "key-0", "secret-1").get("/api/v3/account")
        assert wrong.status_code == 400 and wrong.json()["code"] == -1022
        assert SignedClient(sx.url, "key-9", "secret-9").get("/api/v3/account").json()["code"] == -2015
        assert sx.stats()["weight"]["spot"] >= used_a
        assert sx.truth(0)["spot_orders"] != sx.truth(1)["spot_orders"]


def test_export_files_of_every_account_come_from_the_one_port() -> None:
    configs = [c.with_overrides(time_scale=3600.0, export_processing_seconds=1.0) for c in _configs(2)]
    with FleetSandbox(configs) as sx:
        for i in range(2):
            client = SignedClient(sx.url, f"key-{i}", f"secret-{i}")
            now = sx.exchanges[i].clock.wire()
            created = client.get("/fapi/v1/order/asyn", {"startTime": now - 3 * 86_400_000, "endTime": now - 1})
            did = created.json()["downloadId"]
            link = {}
            for _ in range(200):
                link = client.get("/fapi/v1/order/asyn/id", {"downloadId": did}).json()
                if link.get("status") == "completed":
                    break
            assert link["url"].startswith(sx.url)
            assert client.session.get(link["url"], timeout=10).status_code == 200
            assert (
                sx.stats()["export_ids_created"][i] == {"usdm:order": 1}
                or sum(sx.stats()["export_ids_created"][i].values()) == 1
            )
