"""Browsers holding live notification streams over real HTTP, for the stream tests.

Streams need a real HTTP server (httpx's ASGI transport buffers whole responses):
the test's app is served by uvicorn inside the test's event loop, so the hub the
server uses is the one the test looks at. The ``base`` and ``browsers`` fixtures
(``tests/web/conftest.py``) serve the app and make :class:`Browser` objects.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from ils.domain.companies import User
from ils.web.security import SESSION_COOKIE, session_id_of
from tests.web.conftest import sign_in

WAIT_S = 10.0


@dataclass
class Stream:
    """One open stream: the events it received, and whether the server ended it."""

    task: asyncio.Task[None] | None = None
    events: list[str] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> bool:
        return self.task is not None and self.task.done()


class Browser:
    """One signed-in session over real HTTP, opening streams."""

    def __init__(self, base: str, user: User) -> None:
        self.user = user
        self.http = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(5, read=None))
        self.streams: list[Stream] = []

    async def sign_in(self) -> Browser:
        await sign_in(self.http, self.user.email)
        return self

    @property
    def session_key(self) -> str:
        token = self.http.cookies[SESSION_COOKIE].rpartition(".")[0]
        return session_id_of(token)

    async def open(self) -> Stream:
        stream = Stream()

        async def read() -> None:
            async with self.http.stream("GET", "/api/notifications/stream") as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    if line.startswith(": connected"):
                        stream.connected.set()
                    elif line.startswith("event:"):
                        stream.events.append(line.partition(":")[2].strip())

        stream.task = asyncio.create_task(read())
        await asyncio.wait_for(stream.connected.wait(), WAIT_S)
        self.streams.append(stream)
        return stream

    async def close(self) -> None:
        for stream in self.streams:
            assert stream.task is not None
            stream.task.cancel()
            await asyncio.gather(stream.task, return_exceptions=True)
        await self.http.aclose()
