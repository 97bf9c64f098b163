"""The app for the comparison in ``bench/orders.py``: the order's slow work done inside
the request, as a system without queues would do it.

``POST /api/bench/orders-inline`` creates the order exactly as ``POST /api/orders``
does, queues nothing, commits, then sends the confirmation e-mail and renders the
order sheet and the lab work ticket before it answers, with the same code the
workers run (e-mail through the configured transport, PDFs rendered in the request,
stored and recorded). Served by uvicorn from ``bench/orders.py``:

    python -m uvicorn --app-dir bench --factory inline_orders_app:make_app

Bench code only: nothing in ``src`` knows this route.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.settings import load_settings
from ils.web.app import create_app
from ils.web.deps import CurrentCompany, SessionDep, StateDep
from ils.web.routers.orders import OrderingUser
from ils.web.schemas.orders import OrderCreate, OrderOut
from ils.web.services import orders as service
from ils.web.services.common import now_utc
from ils.workers.email import register as register_email
from ils.workers.pdf import DocumentGenerator, generate_lab_work_ticket, generate_order_sheet
from ils.workers.pdf.pool import InlineRenderer


class _NoQueue:
    """Stands in for the job helpers in ``create_order``: every helper does nothing."""

    def __getattr__(self, name: str) -> Any:
        async def nothing(*args: Any, **kwargs: Any) -> None:
            del args, kwargs

        return nothing


class _RequestContext:
    """The job context the e-mail code expects, for work done in a request."""

    def __init__(self) -> None:
        self.job_id = f"inline-{uuid.uuid4().hex}"
        self.queue = "email"
        self.attempt = 1
        self.store = "local"

    async def progress(self, value: Any) -> None:
        del value

    async def log(self, line: str) -> None:
        del line


def make_app() -> FastAPI:
    """The normal app (no workers: nothing is queued) plus the inline route."""
    app = create_app(load_settings(), start_workers=False)
    tools: dict[str, Any] = {}
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with inner(app):
            system = app.state.ils.system
            from ils.jobs.registry import HandlerRegistry

            context = system.worker_context()
            tools["email"] = register_email(HandlerRegistry(system.job_types), context)
            tools["pdf"] = DocumentGenerator.for_context(context, renderer=InlineRenderer())
            yield

    app.router.lifespan_context = lifespan

    @app.post("/api/bench/orders-inline", status_code=201)
    async def create_order_inline(
        body: OrderCreate,
        user: OrderingUser,
        company: CurrentCompany,
        session: SessionDep,
        state: StateDep,
    ) -> OrderOut:
        order, submitted = await service.create_order(
            session,
            _NoQueue(),  # type: ignore[arg-type]
            user,
            company,
            body,
            now_utc(state.clock),
        )
        await session.commit()
        payload = OrderConfirmationEmail(order_id=order.id, user_id=user.id)
        await tools["email"].order_confirmation(payload, _RequestContext())
        await generate_order_sheet(tools["pdf"], order.id)
        await generate_lab_work_ticket(tools["pdf"], order.id)
        return await service.order_out(session, order, user, [submitted])

    return app
