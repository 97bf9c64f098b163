"""The notification worker: what each job stores, for whom, once; urgent e-mails.

Run on SQLite and PostgreSQL with the real job system (local mode) and the lab
network of ``support.build_network``: a practice (its staff member ``orderer``)
with an order at a lab (its ``lab_admin``), and a connection request from the
practice to the lab.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.clock import ManualClock
from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.content import Notification, NotificationPriority
from ils.jobs.events import Subscription
from ils.jobs.model import JobRecord, JobState
from ils.jobs.payloads.notification import UrgentNotificationEmail
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import notification
from ils.workers.notification import CHANNEL, NotificationWorker
from ils.workers.notification.content import NotificationTargetError
from ils.workers.notification.handlers import urgent_email_job_id
from tests.workers.support import FakeContext, Network, build_network, eventually

URGENT_AFTER_S = 600


@dataclass
class Env:
    system: JobSystem
    worker: NotificationWorker
    registry: HandlerRegistry
    network: Network
    sessions: async_sessionmaker[AsyncSession]
    clock: ManualClock

    async def run(self, name: str, job_id: str = "job-1", **fields: Any) -> dict[str, Any]:
        """Call the handler of job ``name`` as the runner would, with ``fields``."""
        job_type = self.system.job_types.get("notification", name)
        payload = job_type.model.model_validate(fields)
        registration = self.registry.lookup("notification", name)
        assert registration is not None
        handler = registration.handler
        result: dict[str, Any] = await handler(payload, FakeContext(job_id, "notification"))
        return result

    async def rows(self) -> list[Notification]:
        async with self.sessions() as session:
            query = select(Notification).order_by(Notification.created_at, Notification.id)
            return list(await session.scalars(query))

    async def jobs(self, queue: str, name: str) -> list[JobRecord]:
        found = []
        for state in JobState:
            found += await self.system.local.list_jobs(queue, state, limit=1000)
        return [job for job in found if job.name == name]


@pytest.fixture(params=["sqlite", "postgres"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    options: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "redis_url": None,
        "local_poll_interval_ms": 20,
        "notifications": {"urgent_email_after_s": URGENT_AFTER_S},
    }
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await upgrade_database(url)
        options["database_url"] = url
    clock = ManualClock(start_ms=1_795_000_000_000)
    system = await JobSystem.open(Settings(_env_file=None, **options), clock=clock)
    registry = HandlerRegistry(system.job_types)
    worker = notification.register(registry, system.worker_context())
    sessions = session_factory(system.engine)
    try:
        yield Env(system, worker, registry, await build_network(sessions), sessions, clock)
    finally:
        await system.close()


# -- what each job stores ---------------------------------------------------------------


async def test_each_job_type_stores_its_notification_for_its_user(env: Env) -> None:
    net = env.network
    await env.run(
        "system-notification",
        "j-system",
        user_id=net.orderer.id,
        title="Maintenance tonight",
        message="The platform is down 22:00-22:30.",
        priority="low",
        action_url="/status",
    )
    await env.run(
        "order-notification",
        "j-order",
        user_id=net.lab_admin.id,
        order_id=net.order.id,
        status="in_production",
        message="Surfacing has started.",
    )
    await env.run(
        "ai-insight-notification",
        "j-ai",
        user_id=net.lab_admin.id,
        insight_type="forecast",
        title="Progressives up",
        summary="Progressive lenses up 12% on last month.",
        detail_url="/ai/insights/7",
    )
    await env.run(
        "marketplace-notification",
        "j-market",
        user_id=net.lab_admin.id,
        connection_id=net.connection.id,
        action="request",
        company_name="Whatever The Payload Says",
    )
    rows = {row.job_id: row for row in await env.rows()}
    assert set(rows) == {"j-system", "j-order", "j-ai", "j-market"}

    system = rows["j-system"]
    assert (system.user_id, system.company_id) == (net.orderer.id, net.practice.id)
    assert (system.kind, system.priority) == ("system", NotificationPriority.LOW)
    assert (system.title, system.link) == ("Maintenance tonight", "/status")

    order = rows["j-order"]
    assert (order.user_id, order.company_id) == (net.lab_admin.id, net.lab.id)
    assert (order.kind, order.priority) == ("order", NotificationPriority.HIGH)
    assert order.title == f"Order {net.order.number}: in production"
    assert order.message == "Surfacing has started."
    assert order.link == f"/orders/{net.order.id}"

    ai = rows["j-ai"]
    assert (ai.kind, ai.priority) == ("ai-insight", NotificationPriority.MEDIUM)
    assert ai.title == "Demand forecast: Progressives up"
    assert ai.link == "/ai/insights/7"

    market = rows["j-market"]
    assert (market.kind, market.priority) == ("marketplace", NotificationPriority.HIGH)
    # The other company's name from the database, not the payload's.
    assert market.title == f"Connection request from {net.practice.name}"
    assert market.link == f"/marketplace/connections/{net.connection.id}"
    assert all(row.read_at is None and row.emailed_at is None for row in rows.values())


async def test_a_retried_job_stores_nothing_twice(env: Env) -> None:
    fields = {
        "user_id": env.network.orderer.id,
        "order_id": env.network.order.id,
        "status": "shipped",
        "message": "On its way.",
    }
    first = await env.run("order-notification", "j-1", **fields)
    again = await env.run("order-notification", "j-1", **fields)
    assert first["created"] is True and again["created"] is False
    assert again["notificationId"] == first["notificationId"]
    assert len(await env.rows()) == 1
    # A different job with the same content is a different notification.
    await env.run("order-notification", "j-2", **fields)
    assert len(await env.rows()) == 2


async def _other_company_user(env: Env) -> User:
    async with env.sessions() as session, session.begin():
        company = Company(kind=CompanyKind.PRACTICE, name="Elsewhere Opticians")
        session.add(company)
        await session.flush()
        user = User(
            company_id=company.id,
            email="someone@elsewhere.example",
            name="Someone Else",
            password_hash="-",
            role=Role.ADMIN,
        )
        session.add(user)
    return user


async def test_users_of_other_companies_and_missing_records_fail_for_good(env: Env) -> None:
    stranger = await _other_company_user(env)
    net = env.network
    cases: list[tuple[str, dict[str, Any]]] = [
        (
            "order-notification",
            {"user_id": stranger.id, "order_id": net.order.id, "status": "x", "message": "m"},
        ),
        (
            "order-notification",
            {"user_id": net.orderer.id, "order_id": "0" * 32, "status": "x", "message": "m"},
        ),
        (
            "marketplace-notification",
            {
                "user_id": stranger.id,
                "connection_id": net.connection.id,
                "action": "accepted",
                "company_name": "X",
            },
        ),
        (
            "system-notification",
            {"user_id": "f" * 32, "title": "t", "message": "m"},
        ),
    ]
    for n, (name, fields) in enumerate(cases):
        with pytest.raises(NotificationTargetError):
            await env.run(name, f"bad-{n}", **fields)
    async with env.sessions() as session, session.begin():
        await session.execute(update(User).where(User.id == net.orderer.id).values(is_active=False))
    with pytest.raises(NotificationTargetError, match="not active"):
        await env.run(
            "system-notification", "bad-x", user_id=net.orderer.id, title="t", message="m"
        )
    assert await env.rows() == []
    assert await env.jobs("notification", "urgent-notification-email") == []


async def test_a_stored_notification_is_signalled_on_the_event_bus(env: Env) -> None:
    async with env.system.events.subscribe(CHANNEL) as signals:
        assert isinstance(signals, Subscription)
        result = await env.run(
            "system-notification",
            user_id=env.network.lab_admin.id,
            title="Hello",
            message="World",
        )
        assert await signals.get(1.0) == f"{result['notificationId']} {env.network.lab_admin.id}"


# -- urgent notifications left unread are e-mailed -------------------------------------------


async def _urgent(env: Env, job_id: str = "j-urgent") -> str:
    result = await env.run(
        "system-notification",
        job_id,
        user_id=env.network.lab_admin.id,
        title="Remake needed",
        message="Order needs a remake today.",
        priority="urgent",
        action_url="/orders/1",
    )
    return str(result["notificationId"])


async def _run_queue(env: Env, *job_ids: str) -> None:
    """Work the notification queue (the real runner) until ``job_ids`` are done."""
    runner = Runner(env.system.stores(), [env.system.catalogue["notification"]], env.registry)
    runner.start()

    async def settled() -> bool:
        for job_id in job_ids:
            job = await env.system.local.get_job("notification", job_id)
            if job is None or job.state not in (JobState.COMPLETED, JobState.FAILED):
                return False
        return True

    try:
        await eventually(settled, 10)
    finally:
        await runner.stop(5)


async def test_an_urgent_notification_left_unread_is_emailed_once(env: Env) -> None:
    notification_id = await _urgent(env)
    (check,) = await env.jobs("notification", "urgent-notification-email")
    assert check.id == urgent_email_job_id(notification_id)
    assert check.state == JobState.DELAYED
    assert check.data == {"type": "urgent-notification-email", "notificationId": notification_id}
    # A retry of the notification job queues no second check.
    await _urgent(env)
    assert len(await env.jobs("notification", "urgent-notification-email")) == 1

    env.clock.advance(URGENT_AFTER_S * 1000 + 1)
    await _run_queue(env, check.id)
    done = await env.system.local.get_job("notification", check.id)
    assert done is not None and done.state == JobState.COMPLETED
    assert done.result == {"notificationId": notification_id, "outcome": "e-mailed"}
    (mail,) = await env.jobs("email", "general-notification")
    assert mail.data["userId"] == env.network.lab_admin.id
    assert mail.data["subject"] == "Urgent: Remake needed"
    assert "Order needs a remake today." in mail.data["content"]
    assert "/orders/1" in mail.data["content"]
    (row,) = await env.rows()
    assert row.emailed_at is not None

    # Run the check again (a retry after a crash): no second e-mail.
    again = await env.worker.escalate(
        UrgentNotificationEmail.model_validate({"notification_id": notification_id}),
        FakeContext(check.id, "notification"),
    )
    assert again["outcome"] == "already e-mailed"
    assert len(await env.jobs("email", "general-notification")) == 1


async def test_read_or_deleted_urgent_notifications_are_not_emailed(env: Env) -> None:
    read_id = await _urgent(env, "j-read")
    deleted_id = await _urgent(env, "j-deleted")
    async with env.sessions() as session, session.begin():
        await session.execute(
            update(Notification)
            .where(Notification.id == read_id)
            .values(read_at=Notification.created_at)
        )
        row = await session.get(Notification, deleted_id)
        assert row is not None
        await session.delete(row)
    outcomes = [
        (
            await env.worker.escalate(
                UrgentNotificationEmail.model_validate({"notification_id": nid}),
                FakeContext("c", "notification"),
            )
        )["outcome"]
        for nid in (read_id, deleted_id)
    ]
    assert outcomes == ["read", "deleted"]
    assert await env.jobs("email", "general-notification") == []


async def test_non_urgent_notifications_queue_no_email_check(env: Env) -> None:
    for priority in ("high", "medium", "low"):
        await env.run(
            "system-notification",
            f"j-{priority}",
            user_id=env.network.lab_admin.id,
            title="t",
            message="m",
            priority=priority,
        )
    assert len(await env.rows()) == 3
    assert await env.jobs("notification", "urgent-notification-email") == []
