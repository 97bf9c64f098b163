"""The web app counts its requests for the in-process workers (``ils.web.foreground``):
a job's handler waits while a request is in flight; a stream stops counting once its
headers are out."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from ils.jobs.foreground import Foreground
from ils.jobs.model import JobState
from ils.jobs.registry import HandlerRegistry, JobContext
from ils.jobs.worker_context import WorkerContext
from ils.settings import Settings
from ils.testing import eventually
from ils.web.app import create_app
from ils.web.foreground import ForegroundMiddleware
from tests.web.conftest import TestClock, cheap_hasher

SCOPE: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_a_request_counts_until_its_response_starts() -> None:
    foreground = Foreground()
    inside = asyncio.Event()
    answer = asyncio.Event()
    sent: list[Message] = []
    seen_in_flight: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        inside.set()
        await answer.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen_in_flight.append(foreground.in_flight)  # a stream goes on from here
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = ForegroundMiddleware(app, foreground)
    call = asyncio.create_task(middleware(SCOPE, no_body, send))
    await inside.wait()
    assert foreground.in_flight == 1
    answer.set()
    await call
    assert seen_in_flight == [0]
    assert foreground.in_flight == 0
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]


async def test_a_request_that_fails_before_answering_stops_counting() -> None:
    foreground = Foreground()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    middleware = ForegroundMiddleware(app, foreground)
    with pytest.raises(RuntimeError, match="boom"):
        await middleware(SCOPE, no_body, send)
    assert foreground.in_flight == 0


async def test_in_process_jobs_wait_for_a_request_in_flight(
    settings: Settings, clock: TestClock
) -> None:
    handled: list[str] = []

    async def record(payload: Any, ctx: JobContext) -> None:
        handled.append(ctx.job_id)

    def register(registry: HandlerRegistry, context: WorkerContext) -> None:
        del context
        for job_type in registry.job_types:
            registry.replace(job_type.model, record)

    app = create_app(
        # Long enough that the job cannot start by its wait timing out.
        settings.model_copy(update={"requests_first_wait_ms": 10_000}),
        start_workers=True,
        clock=clock,
        password_hasher=cheap_hasher(),
        registrars=[register],
    )
    inside = asyncio.Event()
    answer = asyncio.Event()
    add_route(app, inside, answer)
    async with app.router.lifespan_context(app):
        system = app.state.ils.system
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            held = asyncio.create_task(client.get("/api/test/held"))
            await inside.wait()
            ref = await system.helpers.queue_order_confirmation_email("ord-1", "usr-1")

            async def claimed() -> bool:
                record = await system.local.get_job("email", ref.job_id)
                return record is not None and record.state is JobState.ACTIVE

            await eventually(claimed, 10.0, interval=0.02, message="job not claimed")
            for _ in range(20):
                await asyncio.sleep(0)
            assert handled == []
            answer.set()
            assert (await held).status_code == 200
            await eventually(
                lambda: handled == [ref.job_id], 10.0, message="job not run after the request"
            )


def add_route(app: FastAPI, inside: asyncio.Event, answer: asyncio.Event) -> None:
    """A route that stays in flight until the test lets it answer."""

    @app.get("/api/test/held")
    async def held() -> dict[str, str]:
        inside.set()
        await answer.wait()
        return {"held": "done"}
