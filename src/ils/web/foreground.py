"""Counts the web requests in flight for :class:`~ils.jobs.foreground.Foreground`.

A request counts from its arrival until its response starts: the work a person waits
for is done by then (the body of a plain response follows at once), and a stream (the
notification stream, the dashboard's live view) stops counting as soon as its headers
are out, so an open stream never holds the jobs back.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ils.jobs.foreground import Foreground


class ForegroundMiddleware:
    """A plain ASGI middleware: ``begin`` on arrival, ``end`` at the response's start
    (or when the app returns or fails without one)."""

    def __init__(self, app: ASGIApp, foreground: Foreground) -> None:
        self.app = app
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counting = True
        self.foreground.begin()

        async def counting_send(message: Message) -> None:
            nonlocal counting
            if counting and message["type"] == "http.response.start":
                counting = False
                self.foreground.end()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if counting:
                self.foreground.end()
