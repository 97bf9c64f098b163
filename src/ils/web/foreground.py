"""The ASGI middleware that tells the in-process workers a request is being answered
(see :mod:`ils.jobs.foreground`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ils.jobs.foreground import Foreground


class ForegroundMiddleware:
    """Counts an HTTP request as foreground from its arrival until its response starts."""

    def __init__(self, app: ASGIApp, foreground: Foreground) -> None:
        self.app = app
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        foreground = self.foreground
        foreground.enter()
        answered = False

        async def send_and_leave(message: Message) -> None:
            nonlocal answered
            if not answered and message["type"] == "http.response.start":
                answered = True
                foreground.leave()
            await send(message)

        try:
            await self.app(scope, receive, send_and_leave)
        finally:
            if not answered:
                foreground.leave()
