"""The local store's latency sample (``stores.local.timings``) beyond the contract: a
crowded bucket is sampled evenly even when its jobs' seqs follow a pattern, on SQLite
and PostgreSQL, with times exact on a hand-moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ils.clock import ManualClock
from ils.db.engine import create_engine
from ils.db.migrations import upgrade_database
from ils.jobs.catalogue import build_catalogue
from ils.jobs.model import JobOptions, NewJob
from ils.jobs.stores.local.store import LocalJobStore
from ils.settings import Settings

START = 1_700_000_040_000  # a minute boundary
FAST = {"rate_limit_max": 0, "backoff_delay_ms": 0}


@pytest.fixture(params=["sqlite", "postgres"])
async def store_and_clock(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[LocalJobStore, ManualClock]]:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    await upgrade_database(url)
    engine = create_engine(url)
    clock = ManualClock(START)
    catalogue = build_catalogue(Settings(queues={"pdf": FAST, "email": FAST}))
    store = LocalJobStore(engine, catalogue, clock=clock)
    try:
        yield store, clock
    finally:
        await store.close()
        await engine.dispose()


def pdf(n: int) -> NewJob:
    return NewJob("order-sheet", {"type": "order-sheet", "orderId": f"o{n}"}, JobOptions())


def email(n: int) -> NewJob:
    data = {"type": "order-confirmation", "orderId": f"o{n}", "userId": "u1"}
    return NewJob("order-confirmation", data, JobOptions())


async def test_a_crowded_bucket_is_sampled_evenly_whatever_the_seq_pattern(
    store_and_clock: tuple[LocalJobStore, ManualClock],
) -> None:
    store, clock = store_and_clock
    # Each "order" adds an e-mail and two PDFs: the PDFs' seqs step by three, twice.
    for n in range(120):
        await store.add("email", email(n))
        await store.add("pdf", pdf(2 * n))
        await store.add("pdf", pdf(2 * n + 1))
    # The PDFs run one after the other, 2 ms each: the k-th waits 2k ms.
    for _ in range(240):
        claimed = (await store.fetch("pdf", "worker")).job
        assert claimed is not None
        clock.advance(2)
        await store.complete("pdf", claimed, None)
    whole = await store.finished_timings(
        "pdf", START, START + 60_000, bucket_ms=60_000, per_bucket=240
    )
    assert len(whole) == 240 and {t.weight for t in whole} == {1.0}
    assert sorted(t.wait_ms for t in whole) == [2 * k for k in range(240)]
    assert {t.run_ms for t in whole} == {2}
    sample = await store.finished_timings(
        "pdf", START, START + 60_000, bucket_ms=60_000, per_bucket=40
    )
    # About 40, from every part of the minute, each standing for 240 / kept jobs.
    assert 30 <= len(sample) <= 40
    assert {t.weight for t in sample} == {240 / len(sample)}
    order = sorted(t.finished_ms for t in whole)
    for part in range(4):
        first, last = order[60 * part], order[60 * part + 59]
        picked = [t for t in sample if first <= t.finished_ms <= last]
        assert len(picked) >= 5, (part, len(picked))
    # Both PDFs of an order are picked alike (their seqs differ by one).
    evens = {t.finished_ms for t in sample} & {order[k] for k in range(0, 240, 2)}
    assert 0.3 < len(evens) / len(sample) < 0.7
