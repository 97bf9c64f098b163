"""What chat does not do: answer outside the company's data, leak another company's or a
patient's, or let a failing language model change a correct answer."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.db.engine import create_engine, session_factory
from ils.domain.billing import Invoice, InvoiceLine
from ils.domain.clinical import Patient
from ils.domain.companies import Company
from ils.domain.orders import Order
from ils.settings import AISettings
from ils.workers.ai.language_model import LanguageModelError, OpenAICompatibleModel
from tests.workers.ai.conftest import TODAY, ask, bounds, build_demo, company_named, pounds

# -- what chat does not answer --------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "What's the weather forecast for Manchester tomorrow?",
        "What is the capital of France?",
        "Tell me a joke",
        "Should I use eye drops for dry eyes?",
        "Is it safe to drive with glaucoma?",
        "What is Mrs Patel's prescription?",
        "Has Jane Doe's order shipped?",
    ],
)
async def test_out_of_scope_questions_are_declined(
    session: AsyncSession, lab: Company, question: str
) -> None:
    answer = await ask(session, lab, question)
    assert (answer.intent, answer.answered) == ("unknown", False)
    assert "I can answer questions about" in answer.text
    assert "£" not in answer.text


async def test_a_question_naming_a_patient_is_declined(
    session: AsyncSession, practice: Company
) -> None:
    patient = await session.scalar(
        select(Patient).where(Patient.company_id == practice.id).limit(1)
    )
    assert patient is not None
    question = f"How many orders did {patient.first_name} {patient.last_name} place this year?"
    answer = await ask(session, practice, question)
    assert (answer.answered, answer.facts) == (False, {"reason": "personal"})
    assert patient.last_name not in answer.text


async def test_another_companys_order_is_not_found(
    session: AsyncSession, practice: Company
) -> None:
    other = await company_named(session, "Harbour Eyecare")
    order = await session.scalar(
        select(Order).where(Order.company_id == other.id).order_by(Order.number).limit(1)
    )
    assert order is not None
    answer = await ask(session, practice, f"What's the status of {order.number}?")
    assert (answer.intent, answer.answered) == ("order-status", False)
    assert answer.text == f"I can't find order {order.number} in your company's orders."
    assert answer.facts == {"orders": []}


async def test_a_practice_counts_only_its_own_orders_and_revenue(
    session: AsyncSession, practice: Company, lab: Company
) -> None:
    first = TODAY - timedelta(days=TODAY.weekday() + 7)
    start, after = bounds(practice, first, first + timedelta(days=6))
    in_week = (Order.created_at >= start, Order.created_at < after)
    own = await session.scalar(
        select(func.count(Order.id)).where(Order.company_id == practice.id, *in_week)
    )
    everyone = await session.scalar(
        select(func.count(Order.id)).where(Order.lab_id == lab.id, *in_week)
    )
    assert own is not None and everyone is not None and own < everyone
    answer = await ask(session, practice, "How many orders did we place last week?")
    assert answer.text.startswith(f"{own} orders placed last week")
    own_net = await session.scalar(
        select(func.coalesce(func.sum(InvoiceLine.quantity * InvoiceLine.unit_price_cents), 0))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(Invoice.company_id == practice.id, Invoice.issued_on >= TODAY.replace(day=1))
    )
    lab_answer = await ask(session, lab, "Revenue this month?")
    revenue = await ask(session, practice, "Revenue this month?")
    assert pounds(own_net or 0) in revenue.text
    assert lab_answer.facts["revenue"] not in revenue.text


# -- PostgreSQL -----------------------------------------------------------------------------

PARITY_QUESTIONS = (
    ("Clear View Lens Lab", "Which invoices are overdue?"),
    ("Clear View Lens Lab", "Who is our best customer?"),
    ("Clear View Lens Lab", "Which lens types sell most?"),
    ("Clear View Lens Lab", "Show me Brightside Opticians' orders in the week of 16 November"),
    ("Brightside Opticians", "Are any of our bills overdue?"),
    ("Clear View Lens Lab", "What was our revenue last month?"),
    ("Clear View Lens Lab", "Which orders are overdue?"),
    ("Clear View Lens Lab", "How many orders did we receive this week?"),
    ("Clear View Lens Lab", "What's our median turnaround?"),
    ("Clear View Lens Lab", "How much do customers owe us?"),
    ("Clear View Lens Lab", "What's low on stock?"),
    ("Clear View Lens Lab", "What were our most used products last month?"),
    ("Clear View Lens Lab", "How many orders did Harbour Eyecare place?"),
    ("Brightside Opticians", "How many examinations this year?"),
    ("Brightside Opticians", "What do we owe?"),
    ("Brightside Opticians", "What's our remake rate?"),
)


@pytest.mark.postgres
async def test_postgres_gives_the_same_answers(session: AsyncSession, pg_url: str) -> None:
    """The same network on PostgreSQL answers word for word as on SQLite (dates, sums
    and the LIKE of the patient and company checks behave alike)."""
    await build_demo(pg_url)
    engine = create_engine(pg_url)
    try:
        async with session_factory(engine)() as pg_session:
            for name, question in PARITY_QUESTIONS:
                on_sqlite = await ask(session, await company_named(session, name), question)
                pg_company = await company_named(pg_session, name)
                assert await ask(pg_session, pg_company, question) == on_sqlite, question
            patient = await pg_session.scalar(
                select(Patient).join(Order, Order.patient_id == Patient.id).limit(1)
            )
            assert patient is not None
            lab = await company_named(pg_session, "Clear View Lens Lab")
            named = f"status of {patient.first_name.upper()} {patient.last_name}'s order?"
            assert (await ask(pg_session, lab, named)).facts == {"reason": "personal"}
    finally:
        await engine.dispose()


# -- the language model ----------------------------------------------------------------------


class FakeEndpoint:
    """A chat-completions endpoint that records requests and replies as told."""

    def __init__(self, reply: str | bytes | Exception | int) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        if isinstance(self.reply, int):
            return httpx.Response(self.reply, json={"error": "boom"})
        if isinstance(self.reply, bytes):
            return httpx.Response(200, content=self.reply)
        content = {"role": "assistant", "content": self.reply}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": content}]})

    def model(self) -> OpenAICompatibleModel:
        settings = AISettings(llm_base_url="http://llm.test/v1", llm_api_key="sk-test")
        model = OpenAICompatibleModel.from_settings(settings, transport=httpx.MockTransport(self))
        assert model is not None
        return model


async def test_the_model_phrases_the_answer_from_the_facts(
    session: AsyncSession, practice: Company
) -> None:
    endpoint = FakeEndpoint("")
    model = endpoint.model()
    question = "How many orders did we place last week?"
    try:
        draft = await ask(session, practice, question)
        phrased = f"Last week you placed {draft.facts['orders']} orders with your lab."
        endpoint.reply = f"  {phrased}  "
        answer = await ask(session, practice, question, language_model=model)
    finally:
        await model.close()
    assert answer.text == phrased
    assert (answer.intent, answer.facts) == (draft.intent, draft.facts)
    [request] = endpoint.requests
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["temperature"] == 0
    system, user = body["messages"]
    assert "only from these facts" in system["content"]
    assert f'"orders": {draft.facts["orders"]}' in user["content"]
    assert draft.text in user["content"]
    names = (await session.execute(select(Patient.first_name, Patient.last_name))).all()
    for first, last in names:
        assert f"{first} {last}" not in request.content.decode()


@pytest.mark.parametrize(
    "reply",
    [
        500,
        httpx.ReadTimeout("slow"),
        "   ",
        httpx.ConnectError("down"),
        b"<html>",
        b"{}",
        "You invoiced £987,654.32 last month.",
    ],
    ids=["http-500", "timeout", "empty", "unreachable", "not-json", "no-choices", "invented"],
)
async def test_a_failing_model_leaves_the_draft(
    session: AsyncSession,
    lab: Company,
    caplog: pytest.LogCaptureFixture,
    reply: str | bytes | Exception | int,
) -> None:
    endpoint = FakeEndpoint(reply)
    model = endpoint.model()
    question = "What was our revenue last month?"
    try:
        draft = await ask(session, lab, question)
        with caplog.at_level(logging.WARNING, logger="ils.workers.ai.chat"):
            answer = await ask(session, lab, question, language_model=model)
    finally:
        await model.close()
    assert answer == draft
    assert len(endpoint.requests) == 1
    assert "draft" in caplog.text
    assert question not in caplog.text and draft.facts["revenue"] not in caplog.text


async def test_a_declined_question_never_reaches_the_model(
    session: AsyncSession, lab: Company
) -> None:
    endpoint = FakeEndpoint("Sunny, 21 degrees.")
    model = endpoint.model()
    try:
        answer = await ask(session, lab, "What's the weather like?", language_model=model)
    finally:
        await model.close()
    assert not answer.answered
    assert endpoint.requests == []


def test_no_base_url_means_no_model() -> None:
    assert OpenAICompatibleModel.from_settings(AISettings()) is None


async def test_model_errors_name_the_failure_not_the_content() -> None:
    model = FakeEndpoint(503).model()
    try:
        with pytest.raises(LanguageModelError, match="HTTP 503") as caught:
            await model.phrase("secret question", {"revenue": "£1.00"}, "draft")
    finally:
        await model.close()
    assert "secret" not in str(caught.value) and "£1.00" not in str(caught.value)
