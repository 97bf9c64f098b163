"""The hub's database poll reads rows only when it has missed some (issue 21).

With 1,000 streams the poll's window holds thousands of rows, and reading them twice a
second was the web process's largest single cost under ``bench/users.py``. The poll
now counts the window first and reads it only when the count says a row was missed.
These tests watch the statements the app's engine runs: after the hub has had every
row, its polls only count; a row no signal announced is still found and handed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from ils.clock import utc_now
from ils.domain.companies import CompanyKind, Role
from ils.domain.content import Notification
from ils.jobs.channels import NOTIFICATIONS, notification_messages
from ils.limit_settings import LimitSettings
from ils.settings import Settings
from ils.testing import eventually
from ils.web.live import Listener
from ils.web.state import WebState
from tests.support.statements import recorded_statements
from tests.web.conftest import Factory, TestClock

WAIT_S = 10.0
POLL_S = 0.02


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """Polls every 20 ms, so a test sees many of them quickly."""
    notifications = settings.notifications.model_copy(update={"stream_poll_s": POLL_S})
    return settings.model_copy(update={"notifications": notifications})


class Polls:
    """The hub's polls among recorded statements (SELECTs on the connected users'
    notifications), and how many of them read rows rather than count them."""

    def __init__(self, statements: list[str]) -> None:
        self._statements = statements

    def _polls(self) -> list[str]:
        texts = (" ".join(statement.lower().split()) for statement in self._statements)
        return [t for t in texts if t.startswith("select") and "notifications.user_id in" in t]

    @property
    def polls(self) -> int:
        return len(self._polls())

    @property
    def row_reads(self) -> int:
        return sum("count(" not in text for text in self._polls())


@contextmanager
def watching(state: WebState) -> Iterator[Polls]:
    with recorded_statements(state.system.engine) as statements:
        yield Polls(statements)


def received(listener: Listener, into: list[str]) -> bool:
    into.extend(row.id for row in listener.take())
    return bool(into)


async def test_polls_only_count_once_the_hub_has_every_row(
    state: WebState, factory: Factory
) -> None:
    lab = await factory.company(kind=CompanyKind.LAB, name="Lens Lab")
    user = await factory.user(lab, role=Role.STAFF, email="ann@lab.example")
    caps = LimitSettings()
    async with state.notifications.attach(user.id, "session", caps) as listener:
        # Announced: handed by the hub's read of the announced rows.
        row = Notification(
            company_id=lab.id, user_id=user.id, kind="system", title="t", message="m"
        )
        await factory.add(row)
        for message in notification_messages([(row.id, user.id)]):
            await state.system.events.publish(NOTIFICATIONS, message)
        got: list[str] = []
        await eventually(lambda: received(listener, got), WAIT_S)
        assert got == [row.id]

        with watching(state) as statements:
            await eventually(lambda: statements.polls >= 5, WAIT_S)
        # Five polls, and none read the window: the hub had its one row.
        assert statements.row_reads == 0

        # Stored and never announced (a worker the process cannot hear): found by a poll.
        missed = Notification(
            company_id=lab.id, user_id=user.id, kind="system", title="t2", message="m2"
        )
        with watching(state) as statements:
            await factory.add(missed)
            later: list[str] = []
            await eventually(lambda: received(listener, later), WAIT_S)
        assert later == [missed.id]
        assert statements.row_reads >= 1


async def test_polls_leave_a_row_younger_than_their_interval_to_its_signal(
    state: WebState, factory: Factory, clock: TestClock
) -> None:
    """Under load a row is often committed a moment before its worker announces it.
    Counting such rows made the counts differ at almost every poll, and each then
    read the whole window (50-140 ms a step with 1,000 users). The row below is
    stamped ahead of the app's clock: it stays younger than the interval until the
    clock moves, like a row whose signal is on its way."""
    lab = await factory.company(kind=CompanyKind.LAB, name="Lens Lab")
    user = await factory.user(lab, role=Role.STAFF, email="ann@lab.example")
    async with state.notifications.attach(user.id, "session", LimitSettings()) as listener:
        young = Notification(
            company_id=lab.id,
            user_id=user.id,
            kind="system",
            title="t",
            message="m",
            created_at=utc_now(clock) + timedelta(seconds=60),
        )
        with watching(state) as statements:
            await factory.add(young)
            await eventually(lambda: statements.polls >= 5, WAIT_S)
        assert statements.row_reads == 0
        assert listener.take() == []

        # Never announced: once older than the interval, a poll finds it.
        clock.advance(61_000)
        got: list[str] = []
        await eventually(lambda: received(listener, got), WAIT_S)
        assert got == [young.id]
