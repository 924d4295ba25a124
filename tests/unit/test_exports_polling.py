"""Link polling: pacing from avgCostTimestampOfLast30d, backoff, restarts, PM s3Link, unknown statuses."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.exports import pacing
from pipeline.exports.ledger import ExportLedger
from tests.support.exports import PM, USDM, Clock, FakeClient, completed, make_chain, make_error


def test_pacing_rules() -> None:
    assert pacing.first_poll_delay_s(7_241_837) == 600  # avg ~2 h -> capped at 10 min
    assert pacing.first_poll_delay_s(120_000) == 60  # half the average
    assert pacing.first_poll_delay_s(2_000) == 15  # lower bound
    assert pacing.first_poll_delay_s(None) == pacing.first_poll_delay_s(-1) == 60
    assert pacing.first_poll_delay_s(120_000, time_scale=0.01) == pytest.approx(0.6)
    assert [pacing.next_poll_delay_s(120_000, n) for n in (1, 2, 3, 4, 5, 6)] == [120, 240, 480, 960, 1800, 1800]
    assert pacing.poll_error_delay_s(1) == 60 and pacing.poll_error_delay_s(10) == 1800


def test_poll_only_when_due_then_backoff(tmp_path) -> None:
    client, clock = FakeClient(avg_cost_ms=120_000), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    assert chain.poll_due() == [] and client.links == []
    gaps = []
    last = clock()
    for _ in range(4):
        nxt = chain.ledger.next_poll_time() / 1000
        clock.t = nxt - 1
        assert chain.poll_due() == []
        clock.t = nxt
        [out] = chain.poll_due()
        assert out.status == "processing" and out.download_id == entry.download_id
        gaps.append(round(clock() - last))
        last = clock()
    assert gaps == [60, 120, 240, 480]
    assert len(client.links) == 4
    assert chain.ledger.get(entry.id).polls == 4


def test_restart_continues_from_the_ledger(tmp_path) -> None:
    client, clock = FakeClient(avg_cost_ms=120_000), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    clock.advance(60)
    chain.poll_due()
    clock.advance(120)
    chain.poll_due()
    del chain
    client2 = FakeClient()
    chain2 = make_chain(tmp_path, client2, clock)  # new process: new ledger object, new client
    assert chain2.poll_due() == []
    clock.advance(240)
    [out] = chain2.poll_due()
    assert out.download_id == entry.download_id and client2.links == [entry.download_id]
    assert ExportLedger(tmp_path).get(entry.id).polls == 3
    assert out.next_poll_at == pytest.approx(clock() + 480)
    # a ledger-level poll lease: a second process polling at the same moment gets nothing
    clock.advance(480)
    chain3 = make_chain(tmp_path, FakeClient(), clock)
    assert len(chain2.poll_due()) == 1 and chain3.poll_due() == []


def test_completed_stores_link_and_outcome_has_run_key(tmp_path) -> None:
    client, clock = FakeClient(avg_cost_ms=None), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    exp = int((clock() + 86400) * 1000)
    client.link_script[entry.download_id] = [completed(entry.download_id, "https://bin.example/f.zip?sig=1", exp)]
    clock.advance(60)
    [out] = chain.poll_due()
    assert (out.status, out.run_key, out.url_expires_at) == ("completed", entry.download_id, exp)
    e = chain.ledger.get(entry.id)
    assert (e.status, e.url_expires_at, e.url_where) == ("completed", exp, "https://bin.example/f.zip")
    assert "sig=1" not in repr(e)
    clock.advance(3600)
    assert chain.poll_due() == []  # completed ids are not polled again


def test_pm_s3link_used_when_url_empty(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(PM, date(2024, 1, 1), date(2024, 1, 31))
    ans = completed(entry.download_id, "", int((clock() + 86400) * 1000), pm=True)
    ans["s3Link"] = "https://s3.example/pm.zip?X-Amz-Signature=zz"
    client.link_script[entry.download_id] = [ans]
    clock.advance(600)
    [out] = chain.poll_due(PM)
    assert out.status == "completed"
    assert chain.ledger.get(entry.id).url == "https://s3.example/pm.zip?X-Amz-Signature=zz"


def test_unknown_status_is_an_error_state(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    client.link_script[entry.download_id] = [{"downloadId": entry.download_id, "status": "failed", "url": ""}]
    clock.advance(600)
    [out] = chain.poll_due()
    assert out.status == "error"
    assert entry.download_id in out.message and "'failed'" in out.message
    e = chain.ledger.get(entry.id)
    assert e.status == "error" and e.error == out.message
    clock.advance(86400)
    assert chain.poll_due() == []
    # its range is not re-requested automatically
    assert chain.plan(USDM, date(2024, 1, 1), date(2024, 1, 31)).requests == ()


def test_transient_poll_failure_is_retried_with_backoff(tmp_path) -> None:
    client, clock = FakeClient(), Clock()
    chain = make_chain(tmp_path, client, clock)
    [entry] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    client.link_error = make_error("TransportError", "connection reset")
    clock.advance(600)
    [out] = chain.poll_due()
    assert out.status == "poll_failed" and out.next_poll_at == pytest.approx(clock() + 60)
    client.link_error = None
    clock.advance(60)
    assert [o.status for o in chain.poll_due()] == ["processing"]
    assert chain.ledger.get(entry.id).status == "processing"


def test_wait_until_complete_on_a_scaled_clock(tmp_path) -> None:
    client, clock = FakeClient(avg_cost_ms=7_241_837), Clock()
    chain = make_chain(tmp_path, client, clock, time_scale=0.001)
    [a] = chain.request(USDM, date(2024, 1, 1), date(2024, 1, 31))
    [b] = chain.request(PM, date(2024, 1, 1), date(2024, 1, 31))
    exp = int((clock() + 3600) * 1000)
    client.link_script[a.download_id] = [
        *(dict(status="processing", url="") for _ in range(3)),
        completed(a.download_id, "https://x.example/a", exp),
    ]
    client.link_script[b.download_id] = [completed(b.download_id, "https://x.example/b", exp)]
    start = clock()
    seen = chain.wait_until_complete(timeout=60, sleep=clock.sleep)
    assert {o.download_id for o in seen if o.status == "completed"} == {a.download_id, b.download_id}
    assert clock() - start < 10  # 0.6 + 1.2 + 2.4 + 4.8 scaled seconds at most
    client.link_script[a.download_id] = []
    [c] = chain.request(USDM, date(2023, 1, 1), date(2023, 1, 31), sleep=clock.sleep)
    with pytest.raises(TimeoutError, match=c.download_id):
        chain.wait_until_complete(USDM, timeout=2, sleep=clock.sleep)
