"""Caps per session and per user (issue 23): notification streams (the oldest closes
when a new one goes over a cap) and concurrent long polls (429 past the cap).

Streams are opened over real HTTP (``tests.web.streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest

from ils.domain.companies import Company, CompanyKind, Role, User
from ils.limit_settings import LimitSettings
from ils.settings import Settings
from ils.testing import eventually, still
from ils.web.limits import TOO_BUSY
from ils.web.security import CSRF_HEADER, SESSION_COOKIE, session_id_of
from ils.web.state import WebState
from tests.web.conftest import PASSWORD, ClientMaker, Factory, sign_in
from tests.web.streams import WAIT_S

CAPS = LimitSettings(streams_per_session=2, streams_per_user=3, expensive_per_session=2)


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The conftest's app gets :data:`CAPS`."""
    return settings.model_copy(update={"limits": CAPS})


async def two_users(factory: Factory) -> tuple[Company, User, User]:
    company = await factory.company(CompanyKind.LAB)
    ann = await factory.user(company, email="ann@lab.example")
    bob = await factory.user(company, email="bob@lab.example")
    return company, ann, bob


async def test_a_stream_over_the_sessions_cap_closes_the_oldest(
    factory: Factory, browsers: Any, state: WebState
) -> None:
    _, ann, bob = await two_users(factory)
    tab = await browsers(ann)
    other_user = await browsers(bob)
    bobs = await other_user.open()
    first, second = await tab.open(), await tab.open()
    assert state.notifications.count(session_key=tab.session_key) == 2

    third = await tab.open()
    await eventually(lambda: first.ended, WAIT_S, message="the oldest stream stayed open")
    assert first.events == ["closed"]
    assert state.notifications.count(session_key=tab.session_key) == 2
    await still(lambda: second.ended or third.ended or bobs.ended)
    # Opening more keeps closing the oldest, never the newest.
    fourth = await tab.open()
    await eventually(lambda: second.ended, WAIT_S)
    assert not third.ended and not fourth.ended and not bobs.ended
    assert state.notifications.count(user_id=bob.id) == 1


async def test_a_users_streams_across_sessions_are_capped_oldest_first(
    factory: Factory, browsers: Any, state: WebState
) -> None:
    _, ann, bob = await two_users(factory)
    laptop, phone = await browsers(ann), await browsers(ann)
    bobs = [await (await browsers(bob)).open() for _ in range(2)]
    oldest = await laptop.open()
    newer = [await laptop.open(), await phone.open()]
    assert state.notifications.count(user_id=ann.id) == 3
    # A fourth of Ann's, in the phone's session: the laptop's first stream goes.
    newer.append(await phone.open())
    await eventually(lambda: oldest.ended, WAIT_S)
    assert oldest.events == ["closed"]
    await still(lambda: any(stream.ended for stream in [*newer, *bobs]))
    assert state.notifications.count(user_id=ann.id) == 3
    assert state.notifications.count(user_id=bob.id) == 2


async def test_long_polls_beyond_the_sessions_cap_answer_429(
    factory: Factory, make_client: ClientMaker, state: WebState
) -> None:
    company = await factory.company(CompanyKind.PRACTICE)
    user = await factory.user(company, Role.STAFF)
    client = await sign_in(make_client(), user.email, PASSWORD)
    other = await sign_in(make_client(), user.email, PASSWORD)
    created = await client.post("/api/ai/conversations", json={"title": "Stock"})
    assert created.status_code == 201, created.text
    url = f"/api/ai/conversations/{created.json()['id']}/messages"
    key = session_id_of(client.cookies[SESSION_COOKIE].rpartition(".")[0])

    waiting = [asyncio.create_task(client.get(url, params={"wait": 25})) for _ in range(2)]
    try:
        await eventually(lambda: state.slots.running(key) == 2, WAIT_S)
        refused = await client.get(url, params={"wait": 25})
        assert refused.status_code == 429
        assert refused.json() == {"detail": TOO_BUSY}
        assert refused.headers["Retry-After"] == str(CAPS.retry_after_s)
        # Another session (of the same user) has slots of its own.
        assert (await other.get(url)).status_code == 200
    finally:
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    await eventually(lambda: state.slots.running(key) == 0, WAIT_S)
    assert (await client.get(url)).json() == []


async def test_the_closed_event_tells_the_browser_to_wait_before_reconnecting(
    factory: Factory, base: str
) -> None:
    """The evicted stream's last lines: a minute's ``retry:`` and the reason."""
    _, ann, _ = await two_users(factory)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5, read=None)) as http:
        await sign_in(http, ann.email)
        http.headers.pop(CSRF_HEADER, None)
        async with contextlib.AsyncExitStack() as stack:
            # Each line iterator is kept: dropping one would close its stream.
            readers = []
            for _ in range(CAPS.streams_per_session + 1):
                response = await stack.enter_async_context(
                    http.stream("GET", "/api/notifications/stream")
                )
                readers.append(response.aiter_lines())
                assert (await anext(readers[-1])).startswith("retry: 2000")

            async def rest() -> list[str]:
                return [line async for line in readers[0]]

            lines = await asyncio.wait_for(rest(), WAIT_S)
    assert lines[-4:] == [
        "retry: 60000",
        "event: closed",
        "data: " + json.dumps({"reason": "too many streams"}),
        "",
    ]
