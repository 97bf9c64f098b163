"""A live stream ends when its session does, busy or idle (``ils.web.live``).

A stream used to check its own session only when it sent a keep-alive, that is
after a quiet heartbeat interval: a stream that kept receiving notifications (a lab
user's, all day) never checked, and went on streaming a signed-out user's
notifications. The hub now checks every stream's session each heartbeat interval,
in one read for all of them. Streams are opened over real HTTP (``tests.web.streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import update

from ils.domain.companies import Company, CompanyKind, User
from ils.domain.content import Notification
from ils.jobs import channels
from ils.settings import Settings
from ils.testing import eventually, still
from ils.web.state import WebState
from tests.web.conftest import Factory, TestClock
from tests.web.streams import WAIT_S, Browser

#: The hub checks sessions this often here (15 s by default).
HEARTBEAT_S = 2.0
#: A notification for the busy stream this often: far inside a heartbeat interval,
#: so the stream never goes quiet long enough to send a keep-alive.
FEED_EVERY_S = 0.1


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    notifications = settings.notifications.model_copy(
        update={"stream_heartbeat_s": HEARTBEAT_S, "stream_poll_s": 0.2}
    )
    return settings.model_copy(update={"notifications": notifications})


@contextlib.asynccontextmanager
async def feeding(state: WebState, user: User) -> AsyncIterator[None]:
    """Store and announce a notification for ``user`` every :data:`FEED_EVERY_S`, as
    a worker would, while the block runs."""

    async def feed() -> None:
        while True:
            row = Notification(
                company_id=user.company_id, user_id=user.id, kind="order", title="t", message="m"
            )
            async with state.sessions() as session, session.begin():
                session.add(row)
            for message in channels.notification_messages([(row.id, user.id)]):
                await state.system.events.publish(channels.NOTIFICATIONS, message)
            await asyncio.sleep(FEED_EVERY_S)

    task = asyncio.create_task(feed())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def sign_out(browser: Browser, state: WebState, clock: TestClock) -> None:
    response = await browser.http.post("/api/auth/sign-out")
    assert response.status_code == 204, response.text


async def expire(browser: Browser, state: WebState, clock: TestClock) -> None:
    clock.advance(int(state.settings.session_ttl_hours * 3_600_000) + 1_000)


async def deactivate_user(browser: Browser, state: WebState, clock: TestClock) -> None:
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(User).where(User.id == browser.user.id).values(is_active=False)
        )


async def deactivate_company(browser: Browser, state: WebState, clock: TestClock) -> None:
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(Company).where(Company.id == browser.user.company_id).values(is_active=False)
        )


Ending = Callable[[Browser, WebState, TestClock], Awaitable[None]]


@pytest.mark.parametrize("end", [sign_out, expire, deactivate_user, deactivate_company])
async def test_a_busy_stream_ends_when_its_session_does(
    end: Ending, factory: Factory, browsers: Any, state: WebState, clock: TestClock
) -> None:
    lab = await factory.company(CompanyKind.LAB)
    other_lab = await factory.company(CompanyKind.LAB)
    ann = await factory.user(lab, email="ann@lab.example")
    cy = await factory.user(other_lab, email="cy@other.example")
    browser: Browser = await browsers(ann)
    key = browser.session_key  # signing out clears the cookie it is read from
    stream = await browser.open()
    bystander = await (await browsers(cy)).open()
    async with feeding(state, ann):
        await eventually(lambda: len(stream.events) >= 5, WAIT_S, message="nothing streamed")
        await end(browser, state, clock)
        await eventually(lambda: stream.ended, WAIT_S, message="the stream outlived its session")
    assert "closed" not in stream.events  # ended, not pushed out by a newer stream
    assert state.notifications.count(session_key=key) == 0
    if end is not expire:  # expiry moved everyone's clock
        assert not bystander.ended
        assert state.notifications.count(user_id=cy.id) == 1


async def test_an_idle_stream_ends_after_sign_out_and_others_stay(
    factory: Factory, browsers: Any, state: WebState, clock: TestClock
) -> None:
    lab = await factory.company(CompanyKind.LAB)
    ann = await factory.user(lab, email="ann@lab.example")
    laptop: Browser = await browsers(ann)
    phone: Browser = await browsers(ann)
    leaving, staying = await laptop.open(), await phone.open()

    await sign_out(laptop, state, clock)
    await eventually(lambda: leaving.ended, WAIT_S, message="the stream outlived its session")
    # The same user's other session keeps its stream through later checks.
    await still(lambda: staying.ended, HEARTBEAT_S * 1.5)
    assert state.notifications.count(session_key=phone.session_key) == 1
