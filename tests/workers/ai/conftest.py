"""Fixtures of the chat tests: the demo network, built once, and a session per test.

Building the network takes a few seconds, so it is built once per test session into
a SQLite file; each test gets its own engine and session on its own event loop, and
whatever a test adds (remakes, AI results) is flushed, never committed, and rolled
back afterwards, so tests cannot see each other's rows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.demo.network import build_network
from ils.domain.companies import Company, CompanyKind
from ils.workers.ai.chat import ChatAnswer, answer_question

#: The day the demo network is built for; every question is asked "today".
TODAY = date(2026, 11, 28)


@dataclass(frozen=True)
class DemoDatabase:
    """Where the network was built, and for which day."""

    url: str
    today: date


async def build_demo(url: str) -> None:
    """The demo network, as of :data:`TODAY`, in the (empty) database at ``url``."""
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        await build_network(
            session_factory(engine), today=TODAY, password_hash="x", step=lambda _: None
        )
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> DemoDatabase:
    """The demo network in a SQLite file, built once for the whole test session."""
    path: Path = tmp_path_factory.mktemp("chat") / "demo.db"
    url = f"sqlite:///{path}"
    asyncio.run(build_demo(url))
    return DemoDatabase(url, TODAY)


@pytest.fixture
async def session(demo_database: DemoDatabase) -> AsyncIterator[AsyncSession]:
    """A session on the demo network; everything it flushed is rolled back after."""
    engine = create_engine(demo_database.url)
    try:
        async with session_factory(engine)() as db:
            try:
                yield db
            finally:
                await db.rollback()
    finally:
        await engine.dispose()


async def company_named(session: AsyncSession, name: str) -> Company:
    """The demo company called ``name``."""
    company = await session.scalar(select(Company).where(Company.name == name))
    assert company is not None, name
    return company


@pytest.fixture
async def lab(session: AsyncSession) -> Company:
    """The demo lab."""
    company = await session.scalar(select(Company).where(Company.kind == CompanyKind.LAB))
    assert company is not None
    return company


@pytest.fixture
async def practice(session: AsyncSession) -> Company:
    """A demo practice (one of the three ordering from the lab)."""
    return await company_named(session, "Brightside Opticians")


# -- helpers of the chat tests: expected figures are formatted and bounded here, not by
# -- the code under test -----------------------------------------------------------------


def pounds(cents: int) -> str:
    """``£1,234.50``."""
    return f"£{cents / 100:,.2f}"


def short(day: date) -> str:
    """``3 Nov 2026``."""
    return f"{day.day} {day:%b %Y}"


def bounds(company: Company, first: date, last: date) -> tuple[datetime, datetime]:
    """UTC instants of the company's local midnights starting ``first`` and after ``last``."""
    zone = ZoneInfo(company.time_zone)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    return start, datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)


async def ask(session: AsyncSession, company: Company, question: str, **kw: Any) -> ChatAnswer:
    """The answer as of :data:`TODAY`, checking on the way that its facts are JSON-able."""
    answer = await answer_question(session, company, question, today=TODAY, **kw)
    json.dumps(answer.facts)
    return answer
