"""The domain model on real databases: its migration, exact types, constraints,
numbering under concurrency, status history and stored invoices (the pure rules are in
``test_rules.py``).

Database tests run on SQLite (a file) and on PostgreSQL, migrated with the real
Alembic scripts rather than ``create_all``, so they also prove the migration works.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, Integer, cast, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import ils.db.tables  # noqa: F401  (every table on the metadata)
from ils.db.engine import Base, create_engine, create_numbering_engine, session_factory
from ils.db.migrations import alembic_config, upgrade_database
from ils.domain.billing import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    VatTreatment,
    status_after_payments,
)
from ils.domain.clinical import Patient
from ils.domain.companies import Company, CompanyKind, Role, User
from ils.domain.content import Notification
from ils.domain.numbering import NumberKind, allocate_number
from ils.domain.orders import (
    LensDesign,
    Order,
    OrderStatus,
    OrderStatusChange,
    Side,
)

DOMAIN_TABLES = {
    "companies", "users", "user_sessions", "patients", "examinations", "orders",
    "order_status_changes", "invoices", "invoice_lines", "payments", "products",
    "stock_levels", "daily_sales", "purchase_orders", "purchase_order_lines",
    "connections", "notifications", "documents", "ai_results", "conversations",
    "messages", "uploaded_files", "number_sequences", "mail_messages", "audit_log",
    "order_tracings", "sign_in_throttles",
}  # fmt: skip
S = OrderStatus


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
async def sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database migrated to head."""
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


# -- migration ----------------------------------------------------------------------


async def test_migration_matches_the_models(url: str) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    await upgrade_database(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            changes = await conn.run_sync(diff)
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            checks = await conn.run_sync(checks_in_database)
    finally:
        await engine.dispose()
    assert changes == []
    # compare_metadata ignores CHECK constraints: compare their names separately.
    assert len(checks) >= 30
    assert checks == {
        (table.name, constraint.name)
        for table in Base.metadata.sorted_tables
        if table.name in DOMAIN_TABLES
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert tables >= DOMAIN_TABLES
    domain_models = {
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith("ils.domain.")
    }
    assert domain_models == DOMAIN_TABLES


def checks_in_database(conn: Connection) -> set[tuple[str, str | None]]:
    inspector = inspect(conn)
    return {
        (table, check["name"])
        for table in DOMAIN_TABLES
        for check in inspector.get_check_constraints(table)
    }


async def test_downgrade_to_the_job_store_removes_exactly_the_domain_tables(url: str) -> None:
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            before = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0002_outbox"))
        async with engine.connect() as conn:
            after = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    finally:
        await engine.dispose()
    # ils_workers (0008), ils_schedules (0011) and ils_fallback_counts (0012) are the
    # job system's, but added after 0002: they go too.
    assert before - after == DOMAIN_TABLES | {"ils_workers", "ils_schedules", "ils_fallback_counts"}
    await upgrade_database(url)


# -- fixtures of data ---------------------------------------------------------------


@dataclass
class World:
    practice: Company
    lab: Company
    user: User
    lab_user: User
    patient: Patient


async def seed(session: AsyncSession) -> World:
    practice = Company(kind=CompanyKind.PRACTICE, name="Clear View Opticians")
    lab = Company(kind=CompanyKind.LAB, name="Precision Lens Lab")
    session.add_all([practice, lab])
    await session.flush()
    user = User(
        company_id=practice.id,
        email="ann@clearview.test",
        name="Ann",
        password_hash="x",
        role=Role.STAFF,
    )
    lab_user = User(
        company_id=lab.id,
        email="tom@lab.test",
        name="Tom",
        password_hash="x",
        role=Role.LAB_TECH,
    )
    patient = Patient(company_id=practice.id, first_name="Jo", last_name="Bloggs")
    session.add_all([user, lab_user, patient])
    await session.flush()
    return World(practice, lab, user, lab_user, patient)


def new_order(world: World, number: str, **fields: Any) -> Order:
    return Order(
        number=number,
        company_id=world.practice.id,
        lab_id=world.lab.id,
        patient_id=world.patient.id,
        created_by=world.user.id,
        lens_design=LensDesign.PROGRESSIVE,
        **fields,
    )


# -- exact types --------------------------------------------------------------------

PRESCRIPTION = {
    "right_sphere": Decimal("-30.00"),
    "right_cylinder": Decimal("-0.25"),
    "right_axis": 180,
    "right_add": Decimal("2.75"),
    "left_sphere": Decimal("0.1"),
    "left_cylinder": Decimal("10"),
    "pd_binocular": Decimal("63.5"),
    "lens_index": Decimal("1.67"),
    "frame_box_a": Decimal("21474836.47"),
}


async def test_fixed2_round_trips_exactly(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        world = await seed(session)
        order = new_order(world, "ORD-2026-000001", **PRESCRIPTION)
        session.add(order)
    async with sessions() as session:
        loaded = await session.get_one(Order, order.id)
        for name, value in PRESCRIPTION.items():
            got = getattr(loaded, name)
            assert got == value, name
            if isinstance(value, Decimal):
                assert isinstance(got, Decimal)
                assert got.as_tuple().exponent == -2, (name, got)
        assert str(loaded.left_sphere) == "0.10"
        # Filters convert the same way, so equality on a decimal column is exact.
        found = await session.scalar(select(Order.id).where(Order.pd_binocular == Decimal("63.50")))
        assert found == order.id
        # Stored as integer hundredths, the same on both databases.
        assert await session.scalar(select(cast(Order.pd_binocular, Integer))) == 6350


async def test_fixed2_refuses_values_it_cannot_store_exactly(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    for bad in (Decimal("1.125"), 0.25):
        async with sessions() as session:
            world = await seed(session)
            session.add(new_order(world, "ORD-2026-000009", right_sphere=bad))
            with pytest.raises(StatementError):
                await session.flush()


async def test_times_come_back_aware_utc(sessions: async_sessionmaker[AsyncSession]) -> None:
    local = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    async with sessions() as session, session.begin():
        world = await seed(session)
        order = new_order(world, "ORD-2026-000002")
        session.add(order)
        await session.flush()
        session.add(order.change_status(S.ACCEPTED, Side.LAB, changed_by=None, at=local))
    async with sessions() as session:
        change = await session.scalar(select(OrderStatusChange))
        assert change is not None
        assert change.changed_at == local
        assert change.changed_at.tzinfo is UTC
        assert change.changed_at.hour == 23
        with pytest.raises(StatementError, match="timezone-aware"):
            await session.scalar(
                select(OrderStatusChange).where(OrderStatusChange.changed_at < datetime(2030, 1, 1))
            )


# -- constraints --------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["duplicate_email", "upper_case_email", "duplicate_job_id", "zero_quantity", "exempt_rate"],
)
async def test_constraints_refuse_bad_rows(
    sessions: async_sessionmaker[AsyncSession], bad: str
) -> None:
    async with sessions() as session:
        world = await seed(session)
        if bad in ("duplicate_email", "upper_case_email"):
            email = "ann@clearview.test" if bad == "duplicate_email" else "Bob@clearview.test"
            session.add(
                User(
                    company_id=world.practice.id,
                    email=email,
                    name="B",
                    password_hash="x",
                    role=Role.STAFF,
                )
            )
        elif bad == "duplicate_job_id":
            for _ in range(2):
                session.add(
                    Notification(
                        company_id=world.lab.id,
                        kind="order",
                        title="t",
                        message="m",
                        job_id="job-1",
                    )
                )
        else:
            invoice = Invoice(
                number="INV-2026-00001",
                company_id=world.lab.id,
                customer_id=world.practice.id,
                issued_on=date(2026, 1, 1),
                due_on=date(2026, 1, 31),
            )
            quantity, treatment, rate = (
                (0, "standard", 2000) if bad == "zero_quantity" else (1, "exempt", 2000)
            )
            invoice.lines.append(
                InvoiceLine(
                    description="x",
                    quantity=quantity,
                    unit_price_cents=100,
                    vat_treatment=treatment,
                    vat_rate_bp=rate,
                )
            )
            session.add(invoice)
        with pytest.raises(IntegrityError):
            await session.flush()


# -- numbering ----------------------------------------------------------------------


async def test_parallel_allocations_never_share_a_number(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        world = await seed(session)
    lab_id = world.lab.id

    async def allocate(kind: NumberKind, company_id: str | None) -> str:
        async with sessions() as session, session.begin():
            number = await allocate_number(session, kind, year=2026, company_id=company_id)
            # Hold the transaction open, so an allocation that read the counter before
            # another one committed would hand out the same value.
            await asyncio.sleep(0.01)
            return number

    tasks = [allocate(NumberKind.ORDER, None) for _ in range(25)]
    tasks += [allocate(NumberKind.INVOICE, lab_id) for _ in range(15)]
    numbers = await asyncio.gather(*tasks)
    assert sorted(numbers[:25]) == [f"ORD-2026-{n:06d}" for n in range(1, 26)]
    assert sorted(numbers[25:]) == [f"INV-2026-{n:05d}" for n in range(1, 16)]


async def test_numbers_are_scoped_and_rolled_back_with_the_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        world = await seed(session)
    lab = world.lab.id
    async with sessions() as session:
        async with session.begin():
            assert await allocate_number(session, NumberKind.ORDER, year=2026) == "ORD-2026-000001"
            first = await allocate_number(session, NumberKind.INVOICE, year=2026, company_id=lab)
            assert first == "INV-2026-00001"
        async with session.begin():
            # Invoice numbers are gapless: a rolled-back invoice gives its number back.
            await allocate_number(session, NumberKind.INVOICE, year=2026, company_id=lab)
            await session.rollback()
        async with session.begin():
            again = await allocate_number(session, NumberKind.INVOICE, year=2026, company_id=lab)
            assert again == "INV-2026-00002"
            assert await allocate_number(session, NumberKind.ORDER, year=2027) == "ORD-2027-000001"
            for company in (world.lab, world.practice):
                assert (
                    await allocate_number(
                        session, NumberKind.PURCHASE_ORDER, year=2026, company_id=company.id
                    )
                    == "PO-2026-00001"
                )
            with pytest.raises(ValueError, match="per company"):
                await allocate_number(session, NumberKind.INVOICE, year=2026)
            with pytest.raises(ValueError, match="platform-wide"):
                await allocate_number(session, NumberKind.ORDER, year=2026, company_id="x")


async def test_an_open_order_transaction_does_not_hold_up_the_next_order_number(
    pg_url: str,
) -> None:
    """On PostgreSQL order numbers come from their own short transaction (gaps allowed).

    With the counter bumped inside the order's transaction, the second allocation
    below waited for the first transaction to end: every order queued behind the one
    before it until its commit. (SQLite serializes all write transactions anyway.)
    """
    await upgrade_database(pg_url)
    engine = create_engine(pg_url)
    own = create_numbering_engine(engine)
    assert own is not None
    sessions = session_factory(engine)

    async def order_number(session: AsyncSession) -> str:
        return await allocate_number(session, NumberKind.ORDER, year=2026, own_engine=own)

    try:
        async with sessions() as first, first.begin():
            assert await order_number(first) == "ORD-2026-000001"
            async with sessions() as second, second.begin():
                taken = await asyncio.wait_for(order_number(second), timeout=5)
                assert taken == "ORD-2026-000002"
            await first.rollback()
        # The rolled-back order's number is not handed out again (a gap, by design).
        async with sessions() as third, third.begin():
            assert await order_number(third) == "ORD-2026-000003"

        # More open transactions than the request pool has connections (5 + 10): each
        # still gets its number, from the numbering engine's own pool.
        async def hold_and_number() -> str:
            async with sessions() as session, session.begin():
                await session.connection()
                await asyncio.sleep(0.05)
                return await order_number(session)

        numbers = await asyncio.wait_for(
            asyncio.gather(*(hold_and_number() for _ in range(15))), timeout=20
        )
        assert len(set(numbers)) == 15
    finally:
        await own.dispose()
        await engine.dispose()


async def test_history_is_stored_with_a_new_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        world = await seed(session)
        order = new_order(world, "ORD-2026-000003", status=S.SUBMITTED)
        session.add(order)
        session.add(order.change_status(S.CANCELLED, Side.PRACTICE, changed_by=world.user.id))
    async with sessions() as session:
        change = await session.scalar(select(OrderStatusChange))
        assert change is not None
        assert (change.order_id, change.to_status) == (order.id, S.CANCELLED)
        assert order.side_of(world.lab.id) == Side.LAB
        assert order.side_of(world.practice.id) == Side.PRACTICE
        assert order.side_of("someone-else") is None


async def test_stored_invoice_balance_after_payments(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        world = await seed(session)
        invoice = Invoice(
            number="INV-2026-00001",
            company_id=world.lab.id,
            customer_id=world.practice.id,
            issued_on=date(2026, 11, 2),
            due_on=date(2026, 12, 2),
        )
        invoice.lines.extend(
            [
                InvoiceLine(
                    position=1,
                    description="Lenses",
                    quantity=2,
                    unit_price_cents=4500,
                    vat_treatment=VatTreatment.STANDARD,
                    vat_rate_bp=2000,
                ),
                InvoiceLine(
                    position=2,
                    description="Dispensing",
                    quantity=1,
                    unit_price_cents=2500,
                    vat_treatment=VatTreatment.EXEMPT,
                    vat_rate_bp=0,
                ),
            ]
        )
        session.add(invoice)
        await session.flush()
        for amount, day in ((5000, 3), (2300, 4)):
            session.add(
                Payment(
                    invoice_id=invoice.id,
                    company_id=world.lab.id,
                    amount_cents=amount,
                    method=PaymentMethod.BANK_TRANSFER,
                    received_at=datetime(2026, 11, day, tzinfo=UTC),
                )
            )
    async with sessions() as session:
        loaded = await session.scalar(select(Invoice).where(Invoice.id == invoice.id))
        assert loaded is not None
        assert [line.description for line in loaded.lines] == ["Lenses", "Dispensing"]
        assert loaded.totals().gross_cents == 9000 + 1800 + 2500
        assert loaded.paid_cents() == 7300
        assert loaded.balance_cents() == 13300 - 7300
        assert status_after_payments(loaded.totals().gross_cents, loaded.paid_cents()) == (
            InvoiceStatus.PARTIALLY_PAID
        )
