"""Chat answers from the company's own data, and nothing else.

:func:`answer_question` is what the ``ai`` queue's chat handler calls. The question
is understood by rules (:mod:`~ils.workers.ai.chat_questions`, periods in
:mod:`~ils.workers.ai.chat_periods`); a handler per intent (in
:mod:`~ils.workers.ai.chat_orders` and :mod:`~ils.workers.ai.chat_answers`) reads the
figures, always scoped to the asking company, and builds the answer text from them.
Rules cannot invent a figure, and a question they do not recognise is declined with
a list of what can be asked.

Privacy: questions about an individual patient (a title and name, or the full name
of a patient the company can see) and clinical questions are declined before any
figure is read; answers and their facts name orders, invoices and products, never
patients. An order number of another company reads as not found, exactly like one
that does not exist, so the answer says nothing about it.

Companies: the ones the asker trades with are its own business (a lab's customers
are the practices that order *from it*, a practice's labs those it orders from), so
naming one, or asking for the best customers, is answered from the orders and
invoices between the two (:mod:`~ils.workers.ai.chat_trade`). Naming any other
company is declined, and a supplier gets no rankings of companies.

A language model, when configured, may only rephrase the draft from its facts
(:func:`phrase_answer`); whatever goes wrong with it (an error, no text, a figure
that is not in the facts), the draft is the answer.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date
from types import MappingProxyType
from typing import Final

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.companies import Company, CompanyKind
from ils.workers.ai import chat_answers, chat_orders, chat_trade, facts
from ils.workers.ai.chat_answers import Ask, ChatAnswer
from ils.workers.ai.chat_questions import classify, refusal_reason, understand
from ils.workers.ai.language_model import LanguageModel

__all__ = ["ChatAnswer", "LanguageModel", "answer_question", "compose_answer", "phrase_answer"]

#: What each kind of company can ask, for the reply to a question we decline.
CAN_ANSWER: Final = MappingProxyType(
    {
        CompanyKind.LAB: "order status by order number, order counts, overdue orders, revenue, "
        "payments, unpaid and overdue invoices, your customers and their orders, lens types "
        "and coatings ordered, stock levels, low stock, product usage, demand forecasts "
        "and reorders, anomalies, turnaround and remake rate",
        CompanyKind.PRACTICE: "order status by order number, order counts, overdue orders, "
        "examinations, unpaid and overdue invoices, your labs and your orders with them, "
        "lens types and coatings ordered, turnaround and remake rate",
        CompanyKind.SUPPLIER: "revenue, payments, unpaid and overdue invoices and anomalies",
    }
)
DECLINED: Final = MappingProxyType(
    {
        "medical": "I can't give clinical or medical advice; please rely on a clinician.",
        "personal": "I don't answer questions about individual patients or people.",
        "off-topic": "I can't answer that from your company's data.",
        "not-understood": "I can't answer that from your company's data.",
        "other-company": "I can only answer with your own company's figures and the companies "
        "you trade with, not another company's.",
    }
)
_LOG: Final = logging.getLogger(__name__)
_FIGURE: Final = re.compile(r"\d[\d,]*(?:\.\d+)?")


async def answer_question(
    session: AsyncSession,
    company: Company,
    question: str,
    *,
    today: date,
    language_model: LanguageModel | None = None,
) -> ChatAnswer:
    """The answer to ``question`` from ``company``'s data as of its local ``today``,
    rephrased by ``language_model`` when one is given and it works."""
    draft = await compose_answer(session, company, question, today=today)
    if language_model is None:
        return draft
    return await phrase_answer(draft, question, language_model)


async def compose_answer(
    session: AsyncSession, company: Company, question: str, *, today: date
) -> ChatAnswer:
    """The answer built from the facts alone (the draft). Reads only: the caller may
    end its transaction before calling :func:`phrase_answer`, which may take seconds."""
    known = (
        [] if company.kind is CompanyKind.SUPPLIER else await chat_trade.partners(session, company)
    )
    names = [partner.name for partner in known]
    understood = understand(question, today, own_name=company.name, partner_names=names)
    reason = refusal_reason(understood)
    if reason is None and await facts.mentions_patient(session, company, understood.text):
        reason = "personal"
    if reason is not None:
        return decline(company, reason)
    ask = Ask(session, company, understood)
    intent = classify(understood)
    if not understood.order_numbers and company.kind is not CompanyKind.SUPPLIER:
        # The companies the asker trades with are its own business: "orders from
        # Brightside Opticians" asked by their lab counts the orders placed with it.
        if named := chat_trade.named_partners(understood.text, known):
            return await chat_trade.partner_orders(ask, named)
        if intent == "by-company":
            return await chat_trade.customers(ask)
    if intent == "by-company" or (
        not understood.order_numbers
        and await _names_other_company(session, company, understood.text)
    ):
        return decline(company, "other-company")
    handler = handler_for(intent)
    if handler is None:
        return decline(company, "not-understood")
    return await handler(ask)


async def phrase_answer(draft: ChatAnswer, question: str, model: LanguageModel) -> ChatAnswer:
    """``draft`` in the model's words; the draft itself if the model fails or says
    nothing. Declined answers are kept as they are: there are no facts to phrase."""
    if not draft.answered:
        return draft
    try:
        text = (await model.phrase(question, draft.facts, draft.text)).strip()
    except Exception as error:  # any failure of an optional model keeps the draft
        # The question and facts stay out of logs: they may concern patients' care.
        _LOG.warning("language model failed (%s); answering with the draft", type(error).__name__)
        return draft
    if not text:
        _LOG.warning("language model returned no text; answering with the draft")
        return draft
    if _invents_figures(text, draft):
        _LOG.warning("language model answer has figures not in the facts; answering with the draft")
        return draft
    return ChatAnswer(text, draft.intent, draft.answered, draft.facts)


def _invents_figures(text: str, draft: ChatAnswer) -> bool:
    """Whether ``text`` has a number found neither in the draft nor in the facts. A model
    told to use the facts only may still make a figure up, and a made-up figure is worse
    than the plainer draft. (A loose check: a figure may appear inside a longer one.)"""
    known = draft.text + json.dumps(draft.facts, default=str)
    return any(figure.rstrip(".,") not in known for figure in _FIGURE.findall(text))


def decline(company: Company, reason: str) -> ChatAnswer:
    """The reply to a question we do not answer: why, and what can be asked."""
    text = f"{DECLINED[reason]} I can answer questions about {CAN_ANSWER[company.kind]}."
    return ChatAnswer(text, "unknown", False, {"reason": reason})


async def _names_other_company(session: AsyncSession, company: Company, text: str) -> bool:
    """Whether the question names another company (figures per company are not offered:
    answering with the asker's own totals would read as the other's)."""
    name = func.lower(Company.name)
    query = select(Company.id).where(
        Company.id != company.id, func.length(Company.name) >= 5, literal(text).contains(name)
    )
    return await session.scalar(query.limit(1)) is not None


#: An intent's handler: the answer to one understood question.
Handler = Callable[[Ask], Awaitable[ChatAnswer]]


def handler_for(intent: str) -> Handler | None:
    """The handler of ``intent`` (``None`` for ``unknown``)."""
    handlers: dict[str, Handler] = {
        "order-status": chat_orders.order_status,
        "orders-count": chat_orders.orders_count,
        "overdue-orders": chat_orders.overdue,
        "orders-due": chat_orders.orders_due,
        "turnaround": chat_orders.turnaround,
        "remake-rate": chat_orders.remakes,
        "revenue": chat_answers.revenue,
        "payments": chat_answers.payments,
        "receivables": chat_answers.receivables,
        "overdue-invoices": chat_trade.overdue_invoices,
        "lens-mix": chat_trade.lens_mix,
        "stock-level": chat_answers.stock_level,
        "low-stock": chat_answers.low_stock,
        "top-products": chat_answers.top_products,
        "forecast": chat_answers.forecast,
        "reorder": chat_answers.reorder,
        "anomalies": chat_answers.anomalies,
        "examinations": chat_answers.examinations,
    }
    return handlers.get(intent)
