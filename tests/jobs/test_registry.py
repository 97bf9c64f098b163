"""Handlers registered by payload type: the model names the job, the handler gets it.

The registry finds a model's job type in the catalogue, refuses models outside it
and second handlers for a job, and hands each handler the payload validated with
its own model.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from ils.errors import ConfigurationError, InvalidPayloadError
from ils.jobs.job_types import (
    InvoicePdf,
    JobPayload,
    JobType,
    OrderSheetPdf,
    ProcessOmaFile,
    default_job_types,
)
from ils.jobs.registry import HandlerRegistry, JobContext, Registration
from tests.workers.support import FakeContext


class NotAJob(JobPayload):
    """A payload model no job type of the catalogue uses."""

    order_id: str


def registry() -> HandlerRegistry:
    return HandlerRegistry(default_job_types())


async def test_registering_by_type_binds_the_catalogue_job_and_passes_the_typed_payload() -> None:
    handlers = registry()
    seen: list[OrderSheetPdf] = []

    async def render(payload: OrderSheetPdf, ctx: JobContext) -> dict[str, Any]:
        seen.append(payload)
        return {"order": payload.order_id, "job": ctx.job_id}

    handlers.register(OrderSheetPdf, render)

    assert handlers.registered("pdf") == ["order-sheet"]
    registration = handlers.lookup("pdf", "order-sheet")
    assert registration is not None
    assert (registration.job_type.queue, registration.job_type.name) == ("pdf", "order-sheet")
    assert registration.model is OrderSheetPdf
    payload = registration.parse({"type": "order-sheet", "orderId": "o1"})
    result = await registration.handler(payload, FakeContext("job-1", "pdf"))
    assert result == {"order": "o1", "job": "job-1"}
    assert len(seen) == 1
    assert type(seen[0]) is OrderSheetPdf
    assert seen[0].order_id == "o1"


async def test_a_handler_of_any_payload_fits_every_model() -> None:
    handlers = registry()

    async def echo(payload: BaseModel, ctx: JobContext) -> str:
        return type(payload).__name__

    handlers.register(OrderSheetPdf, echo)
    handlers.register(InvoicePdf, echo)
    registration = handlers.lookup("pdf", "invoice")
    assert registration is not None
    payload = registration.parse({"type": "invoice", "invoiceId": "i1"})
    assert await registration.handler(payload, FakeContext("job-2", "pdf")) == "InvoicePdf"
    assert handlers.registered("pdf") == ["invoice", "order-sheet"]


def test_the_decorator_registers_by_type_too() -> None:
    handlers = registry()

    @handlers.handler(ProcessOmaFile)
    async def process(payload: ProcessOmaFile, ctx: JobContext) -> str:
        return payload.file_id

    registration = handlers.lookup("oma", "process-oma-file")
    assert registration is not None
    assert registration.handler is process


def test_registering_a_model_outside_the_catalogue_fails() -> None:
    handlers = registry()

    async def handle(payload: NotAJob, ctx: JobContext) -> None:
        return None

    with pytest.raises(ConfigurationError, match="NotAJob is not a job type of the catalogue"):
        handlers.register(NotAJob, handle)
    assert all(not handlers.registered(job_type.queue) for job_type in handlers.job_types)


def test_registering_the_same_type_twice_fails_and_keeps_the_first() -> None:
    handlers = registry()

    async def first(payload: OrderSheetPdf, ctx: JobContext) -> str:
        return "first"

    async def second(payload: OrderSheetPdf, ctx: JobContext) -> str:
        return "second"

    handlers.register(OrderSheetPdf, first)
    already = r"job pdf/order-sheet \(OrderSheetPdf\) has a handler already"
    with pytest.raises(ConfigurationError, match=already):
        handlers.register(OrderSheetPdf, second)
    registration = handlers.lookup("pdf", "order-sheet")
    assert registration is not None
    assert registration.handler is first


def test_replace_is_the_deliberate_second_registration() -> None:
    handlers = registry()

    async def first(payload: OrderSheetPdf, ctx: JobContext) -> str:
        return "first"

    async def stand_in(payload: OrderSheetPdf, ctx: JobContext) -> str:
        return "stand-in"

    async def invoice(payload: InvoicePdf, ctx: JobContext) -> str:
        return payload.invoice_id

    handlers.replace(InvoicePdf, invoice)  # nothing to replace yet: registers
    handlers.register(OrderSheetPdf, first)
    handlers.replace(OrderSheetPdf, stand_in)
    registration = handlers.lookup("pdf", "order-sheet")
    assert registration is not None
    assert registration.handler is stand_in
    assert handlers.registered("pdf") == ["invoice", "order-sheet"]

    async def handle(payload: NotAJob, ctx: JobContext) -> None:
        return None

    with pytest.raises(ConfigurationError, match="NotAJob"):
        handlers.replace(NotAJob, handle)


def test_a_model_of_two_job_types_is_ambiguous() -> None:
    twice = default_job_types().with_types([JobType("scheduled", "order-sheet", OrderSheetPdf, 4)])
    handlers = HandlerRegistry(twice)

    async def render(payload: OrderSheetPdf, ctx: JobContext) -> None:
        return None

    with pytest.raises(ConfigurationError, match="pdf/order-sheet, scheduled/order-sheet"):
        handlers.register(OrderSheetPdf, render)


def test_a_job_without_a_handler_has_no_registration() -> None:
    handlers = registry()
    assert handlers.lookup("pdf", "order-sheet") is None
    assert handlers.registered("pdf") == []


def test_parse_validates_against_the_model_and_names_the_field_only() -> None:
    handlers = registry()

    async def render(payload: OrderSheetPdf, ctx: JobContext) -> None:
        return None

    handlers.register(OrderSheetPdf, render)
    registration = handlers.lookup("pdf", "order-sheet")
    assert registration is not None
    secret = "Jane Doe, 1970-01-01"
    with pytest.raises(InvalidPayloadError) as caught:
        registration.parse({"type": "order-sheet", "orderId": secret})
    assert caught.value.problems and caught.value.problems[0].startswith("orderId: ")
    assert secret not in str(caught.value)
    with pytest.raises(InvalidPayloadError, match="invalid pdf/order-sheet job"):
        registration.parse({"type": "order-sheet"})


def test_a_hand_made_registration_refuses_a_payload_of_another_model() -> None:
    """Only the registry guarantees a registration's model is its job type's: one
    built by hand with another model must not hand its handler the wrong payload."""
    job_type = default_job_types().get("pdf", "order-sheet")

    async def process(payload: ProcessOmaFile, ctx: JobContext) -> None:
        return None

    wrong = Registration(job_type, ProcessOmaFile, process)
    with pytest.raises(TypeError, match="expected ProcessOmaFile, not OrderSheetPdf"):
        wrong.parse({"type": "order-sheet", "orderId": "o1"})
