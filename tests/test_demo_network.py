"""The demo network: every role, 120 days of history with a weekly rhythm, built once."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from ils.db.engine import create_engine, session_factory
from ils.db.migrations import upgrade_database
from ils.demo.network import BUILD_STEPS, build_network, network_exists
from ils.demo.setup import CREDENTIALS_FILE, describe_after, prepare_demo
from ils.domain.billing import Invoice, InvoiceStatus
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.orders import Order, OrderStatus
from ils.domain.supply import DailySale
from ils.settings import Settings

TODAY = date(2026, 11, 28)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


async def test_network_has_every_role_and_a_weekly_rhythm(db_url: str) -> None:
    await upgrade_database(db_url)
    engine = create_engine(db_url)
    sessions = session_factory(engine)
    steps: list[str] = []
    try:
        accounts = await build_network(sessions, today=TODAY, password_hash="x", step=steps.append)
        assert await network_exists(sessions)
        # In the order the progress line announces them (ils.demo.setup.describe_after).
        assert steps == list(BUILD_STEPS)
        assert {a.role for a in accounts} == set(Role)
        async with sessions() as session:
            kinds = list(await session.scalars(select(Company.kind)))
            assert sorted(kinds) == sorted(
                [CompanyKind.LAB, CompanyKind.SUPPLIER] + [CompanyKind.PRACTICE] * 3
            )
            assert await session.scalar(select(func.count()).select_from(User)) == len(accounts)
            orders = list(await session.scalars(select(Order)))
            assert len(orders) > 500
            oldest = min(o.created_at for o in orders).date()
            assert (TODAY - oldest).days == 120
            by_status = defaultdict(int)
            for order in orders:
                by_status[order.status] += 1
            assert by_status[OrderStatus.DELIVERED] > by_status[OrderStatus.SUBMITTED] > 0
            paid = await session.scalar(
                select(func.count())
                .select_from(Invoice)
                .where(Invoice.status == InvoiceStatus.PAID)
            )
            assert paid and paid > 100
            sales = list(await session.scalars(select(DailySale)))
            per_weekday = defaultdict(int)
            for sale in sales:
                per_weekday[sale.day.weekday()] += sale.units
            assert per_weekday[0] > 3 * per_weekday[6]  # busy Monday, quiet Sunday
    finally:
        await engine.dispose()


async def test_prepare_demo_builds_once_and_prints_the_same_sign_in(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first, second = io.StringIO(), io.StringIO()
    await prepare_demo(settings, Console(file=first, width=200), today=TODAY)
    await prepare_demo(settings, Console(file=second, width=200), today=TODAY)
    saved = json.loads((tmp_path / CREDENTIALS_FILE).read_text())
    assert (tmp_path / CREDENTIALS_FILE).stat().st_mode & 0o777 == 0o600
    for output in (first.getvalue(), second.getvalue()):
        assert saved["password"] in output
        assert "admin@clearview-lab.example" in output
    assert "already built" in second.getvalue()
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            labs = await session.scalar(
                select(func.count()).select_from(Company).where(Company.kind == CompanyKind.LAB)
            )
            assert labs == 1
            user = await session.scalar(
                select(User).where(User.email == "staff@brightside.example")
            )
            assert user is not None
            assert user.password_hash.startswith("$argon2id$")
    finally:
        await engine.dispose()


def test_the_progress_line_names_the_step_that_runs_now() -> None:
    """Issue 22: the line said "built companies" while the users were being built, so
    it lagged the work by a step. Once a step is done it names the next one."""
    assert describe_after(BUILD_STEPS[0]) == f"building {BUILD_STEPS[1]}"
    assert [describe_after(step) for step in BUILD_STEPS] == [
        *(f"building {step}" for step in BUILD_STEPS[1:]),
        "built",
    ]
