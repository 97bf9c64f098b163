"""One notification job per order event, not one per recipient (issue 21).

An order event used to queue an ``order-notification`` job for every active user of
the company told, and the rate-limited ``notification`` queue fell minutes behind with
a few hundred users. Now it queues one ``company-order-notification``, whose handler
stores a row for each user of the company active when it runs, in one transaction,
and signals each recipient's live streams. Run on SQLite and PostgreSQL with the real
job system (local mode), the real order service and the real runner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.db.transactions import Transactions
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.content import Notification, NotificationPriority
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.domain.orders import OrderStatus
from ils.jobs.catalogue import RateLimit, build_catalogue
from ils.jobs.channels import read_notification_message
from ils.jobs.events import LocalEventBus
from ils.jobs.payloads.notification import CompanyOrderNotification
from ils.jobs.system import JobSystem
from ils.limit_settings import LimitSettings
from ils.settings import NotificationSettings, Settings
from ils.testing import TestSystem, still
from ils.web.live import NotificationHub
from ils.web.live_stream import NotificationStream
from ils.web.schemas.orders import OrderCreate
from ils.web.services.orders import change_status, create_order
from ils.workers import notification
from ils.workers.notification import CHANNEL, NotificationWorker
from ils.workers.notification.content import NotificationTargetError
from ils.workers.notification.handlers import recipient_key
from tests.support.clock_edge import next_millisecond
from tests.support.statements import recorded_statements, recorded_transactions
from tests.workers.support import FakeContext, Network, build_network

#: Active users of the lab besides ``build_network``'s lab admin.
MORE_LAB_USERS = 4


@dataclass
class Env:
    ts: TestSystem
    worker: NotificationWorker
    network: Network
    sessions: async_sessionmaker[AsyncSession]
    clock: ManualClock
    lab_users: list[User]  # every active user of the lab
    inactive: User  # a deactivated lab user
    stranger: User  # an active user of another lab

    @property
    def system(self) -> JobSystem:
        return self.ts.system

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)

    async def rows(self) -> list[Notification]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Notification).order_by(Notification.id)))


def _user(company: Company, name: str, role: Role = Role.STAFF, **fields: Any) -> User:
    return User(
        company_id=company.id,
        email=f"{name}@{company.id}.example",
        name=name,
        password_hash="-",
        role=role,
        **fields,
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    options: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "redis_url": None,
        "local_poll_interval_ms": 20,
    }
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await upgrade_database(url)
        options["database_url"] = url
    clock = ManualClock(start_ms=1_795_000_000_000)
    system = await JobSystem.open(Settings(_env_file=None, **options), clock=clock)
    try:
        ts = TestSystem(system)
        worker = notification.register(ts.registry, system.worker_context())
        sessions = session_factory(system.engine)
        net = await build_network(sessions)
        async with sessions() as session, session.begin():
            # Orders need an accepted connection between the practice and the lab.
            await session.execute(
                update(Connection)
                .where(Connection.id == net.connection.id)
                .values(status=ConnectionStatus.ACCEPTED)
            )
            more = [_user(net.lab, f"lab-{n}") for n in range(MORE_LAB_USERS)]
            inactive = _user(net.lab, "gone", is_active=False)
            other_lab = Company(kind=CompanyKind.LAB, name="Other Lab")
            session.add(other_lab)
            await session.flush()
            stranger = _user(other_lab, "stranger", Role.ADMIN)
            session.add_all([*more, inactive, stranger])
        yield Env(ts, worker, net, sessions, clock, [net.lab_admin, *more], inactive, stranger)
    finally:
        await system.close()


def _order_body(net: Network) -> OrderCreate:
    return OrderCreate.model_validate(
        {
            "patient_id": net.patient.id,
            "lab_id": net.lab.id,
            "lens": {"design": "single_vision", "material": "cr39", "index": "1.50"},
            "right": {"sphere": -1.25},
            "left": {"sphere": -1.0},
            "pd_binocular": 63,
            "due_date": "2030-01-15",
        }
    )


async def _place_order(env: Env) -> str:
    net = env.network
    async with env.system.worker_context().db.write() as session:
        order, _ = await create_order(
            session, env.system.helpers, net.orderer, net.practice, _order_body(net), env.now()
        )
    return order.id


async def test_an_order_queues_one_job_that_notifies_every_active_lab_user_once(
    env: Env,
) -> None:
    net = env.network
    order_id = await _place_order(env)

    # One job for the lab, not one per user.
    queued = await env.ts.enqueued("notification")
    assert [job.name for job in queued] == ["company-order-notification"]
    (job,) = queued
    assert job.data["companyId"] == net.lab.id
    assert job.data["orderId"] == order_id
    assert job.data["status"] == "submitted"

    async with env.system.events.subscribe(CHANNEL) as signals:
        result = await env.ts.run_until_idle()
        assert [outcome.job_id for outcome in result.completed] == [job.id]
        # The company's rows are announced together: one message, not one a user.
        message = await signals.get(10.0)
        assert message is not None
        assert signals.drain() == []
    announced, bare_users = read_notification_message(message)
    lab_ids = {user.id for user in env.lab_users}
    # Each recipient's row was announced to its streams; nobody else's.
    assert set(announced.values()) == lab_ids
    assert bare_users == set()

    rows = await env.rows()
    assert announced == {row.id: row.user_id for row in rows}
    assert sorted(row.user_id or "" for row in rows) == sorted(lab_ids)
    assert env.inactive.id not in {row.user_id for row in rows}
    assert env.stranger.id not in {row.user_id for row in rows}
    assert {row.company_id for row in rows} == {net.lab.id}
    assert {row.job_id for row in rows} == {recipient_key(job.id, uid) for uid in lab_ids}
    for row in rows:
        assert (row.kind, row.priority) == ("order", NotificationPriority.HIGH)
        assert row.title.endswith(": submitted")
        assert row.message.startswith("New order ")
        assert row.link == f"/orders/{order_id}"
    done = await env.ts.job("notification", job.id)
    assert done.result == {
        "companyId": net.lab.id,
        "orderId": order_id,
        "recipients": len(lab_ids),
        "created": len(lab_ids),
    }

    # A retry of the same job (it died after its commit) stores nothing twice.
    payload = CompanyOrderNotification.model_validate(job.data)
    again = await env.worker.company_order_notification(
        payload, FakeContext(job.id, "notification")
    )
    assert (again["recipients"], again["created"]) == (len(lab_ids), 0)
    assert len(await env.rows()) == len(lab_ids)


async def test_a_status_change_queues_one_job_for_the_other_side(env: Env) -> None:
    net = env.network
    order_id = await _place_order(env)
    await env.ts.run_until_idle()
    async with env.system.worker_context().db.write() as session:
        await change_status(
            session,
            env.system.helpers,
            net.lab_admin,
            order_id,
            OrderStatus.ACCEPTED,
            None,
            env.now(),
        )
    (job,) = await env.ts.enqueued("notification")
    assert job.name == "company-order-notification"
    assert (job.data["companyId"], job.data["status"]) == (net.practice.id, "accepted")
    await env.ts.run_until_idle()
    practice_rows = [row for row in await env.rows() if row.company_id == net.practice.id]
    assert [row.user_id for row in practice_rows] == [net.orderer.id]


async def test_a_retry_stores_only_what_its_first_attempt_did_not(env: Env) -> None:
    """A user made active between attempts is notified by the retry; the others are
    not notified twice."""
    order_id = await _place_order(env)
    (job,) = await env.ts.enqueued("notification")
    payload = CompanyOrderNotification.model_validate(job.data)
    first = await env.worker.company_order_notification(payload, FakeContext(job.id))
    async with env.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == env.inactive.id).values(is_active=True))
    again = await env.worker.company_order_notification(payload, FakeContext(job.id))
    assert (first["created"], again["created"]) == (len(env.lab_users), 1)
    rows = await env.rows()
    assert len(rows) == len(env.lab_users) + 1
    assert all(row.link == f"/orders/{order_id}" for row in rows)


async def test_an_order_of_another_company_fails_for_good(env: Env) -> None:
    payload = CompanyOrderNotification.model_validate(
        {
            "company_id": env.stranger.company_id,
            "order_id": env.network.order.id,
            "status": "accepted",
            "message": "m",
        }
    )
    with pytest.raises(NotificationTargetError):
        await env.worker.company_order_notification(payload, FakeContext("j-bad"))
    assert await env.rows() == []


def test_a_long_job_id_still_gives_a_key_that_fits_the_column() -> None:
    short = recipient_key("job-1", "u" * 32)
    long = recipient_key("j" * 255, "u" * 32)
    assert short == f"job-1/{'u' * 32}"
    assert len(long) <= 255 and long.endswith("/" + "u" * 32)
    assert long != recipient_key("j" * 254, "u" * 32)


def test_the_notification_queue_limit_is_100_a_second_and_overridable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 a minute made in-app notifications 55 s late with 100 users (issue 21)."""
    assert build_catalogue(Settings(_env_file=None))["notification"].rate_limit == RateLimit(
        6_000, 60_000
    )
    monkeypatch.setenv("ILS_QUEUES__NOTIFICATION__RATE_LIMIT_MAX", "200")
    overridden = build_catalogue(Settings(_env_file=None))["notification"]
    assert overridden.rate_limit == RateLimit(200, 60_000)


async def test_the_rows_are_stored_by_one_insert_statement(env: Env) -> None:
    """One multi-row INSERT for the whole company, not one statement per user."""
    await _place_order(env)
    (job,) = await env.ts.enqueued("notification")
    with recorded_statements(env.system.engine) as statements:
        payload = CompanyOrderNotification.model_validate(job.data)
        result = await env.worker.company_order_notification(payload, FakeContext(job.id))
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO NOTIFICATIONS")]
    assert result["created"] == len(env.lab_users) > 1
    assert len(inserts) == 1


async def test_a_later_jobs_rows_sort_after_an_earlier_jobs_rows(env: Env) -> None:
    """The rows' ids are time-ordered (``ils.ids``), so each company notification adds
    to the end of the id index instead of one random page per recipient (bench/ids.py).
    With uuid4 ids the two jobs' rows interleave."""
    order_id = await _place_order(env)
    (job,) = await env.ts.enqueued("notification")
    payload = CompanyOrderNotification.model_validate(job.data)
    await env.worker.company_order_notification(payload, FakeContext("job-first"))
    first = {row.id for row in await env.rows()}
    next_millisecond()
    await env.worker.company_order_notification(payload, FakeContext("job-second"))
    second = {row.id for row in await env.rows()} - first
    assert len(first) == len(second) == len(env.lab_users) > 1
    assert max(first) < min(second)
    assert all(row.link == f"/orders/{order_id}" for row in await env.rows())


async def test_the_jobs_log_line_commits_with_its_rows(env: Env) -> None:
    """In local mode the job's log line is one more statement of the transaction that
    stores the rows, not a write transaction of its own (a third of the job's commits
    on SQLite's one write lock, under bench/users.py)."""
    await _place_order(env)
    (job,) = await env.ts.enqueued("notification")
    with recorded_transactions(env.system.engine) as transactions:
        await env.ts.run_until_idle()

    def writes(statements: list[str], table: str) -> bool:
        return any(s.lstrip().upper().startswith(f"INSERT INTO {table}") for s in statements)

    (stored,) = [t for t in transactions if writes(t, "NOTIFICATIONS")]
    assert writes(stored, "ILS_JOB_LOGS")
    assert [t for t in transactions if writes(t, "ILS_JOB_LOGS")] == [stored]
    done = await env.ts.job("notification", job.id)
    assert [line.split("] ", 1)[1] for line in done.logs] == [
        f"stored {len(env.lab_users)} order notifications for company {env.network.lab.id} "
        "(0 already stored)"
    ]


async def test_two_copies_of_one_job_at_once_store_each_row_once(env: Env) -> None:
    """The same job id running in two places at once (both stores in Redis mode):
    the copy whose insert loses to the unique key stores nothing and does not fail."""
    await _place_order(env)
    (job,) = await env.ts.enqueued("notification")
    payload = CompanyOrderNotification.model_validate(job.data)
    first, second = await asyncio.gather(
        env.worker.company_order_notification(payload, FakeContext(job.id)),
        env.worker.company_order_notification(payload, FakeContext(job.id)),
    )
    assert sorted([first["created"], second["created"]]) == [0, len(env.lab_users)]
    assert len(await env.rows()) == len(env.lab_users)


async def _next_event(events: AsyncIterator[str]) -> str:
    """The next event of a stream that is not a keep-alive comment."""
    while True:
        event_text = await anext(events)
        if not event_text.startswith(": keep-alive"):
            return event_text


@pytest.mark.parametrize("heard", [True, False], ids=["announced", "found-by-the-poll"])
async def test_an_order_reaches_every_recipients_stream_with_one_read(
    env: Env, heard: bool
) -> None:
    """An order told to a lab's users wakes each of their open streams; the hub reads
    the rows once for all of them (each stream reading for itself made an order to a
    lab of 100 users cost 100 reads; bench/users.py, issue 21). So it does when it
    cannot hear the worker (another process in local mode) and its poll finds them."""
    db = Transactions(env.system.engine, env.system.write_turn)
    settings = NotificationSettings(stream_poll_s=60 if heard else 0.05)
    bus = env.system.events if heard else LocalEventBus()
    hub = NotificationHub(bus, db, settings, env.clock)
    watchers = [*env.lab_users, env.stranger]
    streams = [
        NotificationStream(
            hub,
            db,
            settings,
            user.id,
            user.company_id,
            session_key=f"session-{user.id}",
            caps=LimitSettings(),
        ).events()
        for user in watchers
    ]
    full_reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split()).lower()
        if text.startswith("select") and "notifications.title" in text:
            full_reads.append(text)

    engine = env.system.engine.sync_engine
    try:
        for events in streams:  # each has read what it missed (nothing) once connected
            assert (await _next_event(events)).startswith("retry: 2000\n: connected")
        event.listen(engine, "before_cursor_execute", record)
        await _place_order(env)
        await env.ts.run_until_idle()
        # The poll leaves rows younger than its interval to their signals.
        env.clock.advance(100)
        received = await asyncio.wait_for(
            asyncio.gather(*(_next_event(events) for events in streams[:-1])), timeout=10
        )
        event.remove(engine, "before_cursor_execute", record)
        rows = {row.user_id: row for row in await env.rows()}
        for user, text in zip(env.lab_users, received, strict=True):
            assert text.startswith(f"id: {rows[user.id].id}\nevent: notification\n")
        # The stranger of another lab heard nothing.
        stranger = asyncio.ensure_future(_next_event(streams[-1]))
        await still(stranger.done, message="the other lab's user was told")
        stranger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stranger
    finally:
        if event.contains(engine, "before_cursor_execute", record):
            event.remove(engine, "before_cursor_execute", record)
        for events in streams:
            await events.aclose()  # type: ignore[attr-defined]
        await hub.close()
    assert len(full_reads) == 1, full_reads
    assert "notifications.id in" in full_reads[0]
