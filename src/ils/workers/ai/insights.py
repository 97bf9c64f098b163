"""Insights over a period: computed findings in short sentences with their numbers.

Each kind compares the period with the one of the same length just before it and
names what moved: revenue and its top customers, stock used and its top movers,
examinations and remakes, order volume, turnaround and overdue work. A finding is a
sentence plus the figures behind it, so the web app can chart what the text says.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ils.domain.billing import Invoice, InvoiceLine
from ils.domain.companies import Company, CompanyKind
from ils.workers.ai import facts
from ils.workers.ai.facts import LINE_NET, Period, invoiced_in, money
from ils.workers.ai.results import plural

InsightKind = Literal["revenue", "inventory", "patient-care", "operations"]

#: How many customers or products a "top movers" finding names.
TOP: Final = 3


@dataclass(frozen=True, slots=True)
class Finding:
    """One insight: a sentence and the numbers it states."""

    text: str
    metric: str
    value: float | None = None
    previous: float | None = None

    def as_json(self) -> dict[str, Any]:
        """What is stored for the web app."""
        return {
            "text": self.text,
            "metric": self.metric,
            "value": self.value,
            "previous": self.previous,
            "changePercent": change_percent(self.value, self.previous),
        }


def change_percent(value: float | None, previous: float | None) -> float | None:
    """Relative change in percent, rounded to one decimal; ``None`` without a base."""
    if value is None or previous is None or previous == 0:
        return None
    return round((value - previous) / previous * 100, 1)


def compared(now: float, before: float, fmt: Callable[[float], str]) -> str:
    """``up 12% from £1,000.00`` / ``down 3% from 40`` / ``the same as before``."""
    percent = change_percent(now, before)
    if percent is None:
        return f"against {fmt(before)} the period before"
    if round(percent) == 0:
        return f"about the same as the {fmt(before)} of the period before"
    direction = "up" if percent > 0 else "down"
    return f"{direction} {abs(round(percent))}% from {fmt(before)} the period before"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _days(value: float) -> str:
    return f"{value:.1f} days"


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


async def generate_insights(
    session: AsyncSession, company: Company, kind: InsightKind, period: Period, today: date
) -> list[Finding]:
    """The findings of ``kind`` for ``period``; ``today`` dates what is overdue now."""
    builders: dict[str, Callable[[], Awaitable[list[Finding]]]] = {
        "revenue": lambda: _revenue(session, company, period),
        "inventory": lambda: _inventory(session, company, period),
        "patient-care": lambda: _patient_care(session, company, period),
        "operations": lambda: _operations(session, company, period, today),
    }
    findings = await builders[kind]()
    if not findings:
        findings.append(Finding(f"No {kind.replace('-', ' ')} data for {period.label()}.", kind))
    return findings


# -- revenue --------------------------------------------------------------------------


async def _revenue(session: AsyncSession, company: Company, period: Period) -> list[Finding]:
    before = period.previous()
    now_cents = await facts.revenue_cents(session, company, period)
    before_cents = await facts.revenue_cents(session, company, before)
    if now_cents == 0 and before_cents == 0:
        return []
    findings = [
        Finding(
            f"Revenue invoiced {period.label()} was {money(now_cents)} (net), "
            f"{compared(now_cents, before_cents, money)}.",
            "revenue",
            now_cents,
            before_cents,
        )
    ]
    customers_now = await _revenue_by_customer(session, company, period)
    customers_before = await _revenue_by_customer(session, company, before)
    ranked = sorted(customers_now.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    for name, cents in ranked:
        findings.append(
            Finding(
                f"{name}: {money(cents)}, {compared(cents, customers_before.get(name, 0), money)}.",
                "customer-revenue",
                cents,
                customers_before.get(name, 0),
            )
        )
    paid_now = await facts.payments_cents(session, company, period)
    findings.append(
        Finding(
            f"Payments received: {money(paid_now)}"
            f" ({_percent(paid_now / now_cents) if now_cents else 'n/a'} of the amount invoiced).",
            "payments",
            paid_now,
        )
    )
    return findings


async def _revenue_by_customer(
    session: AsyncSession, company: Company, period: Period
) -> dict[str, int]:
    customer = aliased(Company)
    rows = await session.execute(
        select(customer.name, func.sum(LINE_NET))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .join(customer, customer.id == Invoice.customer_id)
        .where(*invoiced_in(company, period))
        .group_by(customer.name)
    )
    return {name: int(total or 0) for name, total in rows}


# -- inventory ------------------------------------------------------------------------


async def _inventory(session: AsyncSession, company: Company, period: Period) -> list[Finding]:
    used_now = await facts.units_used(session, company, period)
    used_before = {
        item.product_id: units
        for item, units in await facts.units_used(session, company, period.previous())
    }
    findings: list[Finding] = []
    total_now = sum(units for _, units in used_now)
    total_before = sum(used_before.values())
    if total_now or total_before:
        findings.append(
            Finding(
                f"{_count(total_now)} units of stock used {period.label()}, "
                f"{compared(total_now, total_before, _count)}.",
                "units-used",
                total_now,
                total_before,
            )
        )
    movers = sorted(
        used_now,
        key=lambda pair: (-abs(pair[1] - used_before.get(pair[0].product_id, 0)), pair[0].sku),
    )[:TOP]
    for item, units in movers:
        previous = used_before.get(item.product_id, 0)
        if units == previous:
            continue
        findings.append(
            Finding(
                f"{item.sku} {item.name}: {_count(units)} used, "
                f"{compared(units, previous, _count)}.",
                "product-units",
                units,
                previous,
            )
        )
    low = await facts.low_stock(session, company)
    if low:
        findings.append(
            Finding(
                f"{plural(len(low), 'product is', 'products are')} at or below the reorder "
                f"point, e.g. {low[0].sku} {low[0].name} with {low[0].on_hand} left.",
                "low-stock",
                len(low),
            )
        )
    idle = [item for item in await facts.stock(session, company) if item.on_hand > 0]
    used_ids = {item.product_id for item, units in used_now if units > 0}
    idle = [item for item in idle if item.product_id not in used_ids]
    if idle:
        findings.append(
            Finding(
                f"{plural(len(idle), 'stocked product was', 'stocked products were')} not used "
                f"at all {period.label()}, e.g. {idle[0].sku} {idle[0].name} "
                f"({idle[0].on_hand} on hand).",
                "idle-stock",
                len(idle),
            )
        )
    return findings


# -- patient care ---------------------------------------------------------------------


async def _patient_care(session: AsyncSession, company: Company, period: Period) -> list[Finding]:
    before = period.previous()
    findings: list[Finding] = []
    if company.kind is CompanyKind.PRACTICE:
        exams = await facts.examinations(session, company, period)
        exams_before = await facts.examinations(session, company, before)
        findings.append(
            Finding(
                f"{plural(exams, 'eye examination')} {period.label()}, "
                f"{compared(exams, exams_before, _count)}.",
                "examinations",
                exams,
                exams_before,
            )
        )
        orders = await facts.orders_created(session, company, period)
        if exams:
            findings.append(
                Finding(
                    f"{plural(orders, 'lens order')} placed: {orders / exams:.2f} per examination.",
                    "orders-per-examination",
                    round(orders / exams, 3),
                )
            )
    findings.extend(await _remake_findings(session, company, period))
    turnaround = facts.median(await facts.turnaround_days(session, company, period))
    if turnaround is not None:
        findings.append(
            Finding(
                f"Patients waited a median {_days(turnaround)} from order to shipping.",
                "turnaround-days",
                round(turnaround, 2),
            )
        )
    return findings


async def _remake_findings(
    session: AsyncSession, company: Company, period: Period
) -> list[Finding]:
    now = await facts.remakes(session, company, period)
    before = await facts.remakes(session, company, period.previous())
    if now.rate is None:
        return []
    text = f"Remake rate {_percent(now.rate)} ({now.remakes} of {plural(now.orders, 'order')})"
    if before.rate is not None:
        text += f", against {_percent(before.rate)} the period before"
    return [Finding(text + ".", "remake-rate", round(now.rate, 4), _rounded(before.rate))]


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


# -- operations -----------------------------------------------------------------------


async def _operations(
    session: AsyncSession, company: Company, period: Period, today: date
) -> list[Finding]:
    before = period.previous()
    noun = "received" if company.kind is CompanyKind.LAB else "placed"
    orders = await facts.orders_created(session, company, period)
    orders_before = await facts.orders_created(session, company, before)
    findings = [
        Finding(
            f"{plural(orders, 'order')} {noun} {period.label()}, "
            f"{compared(orders, orders_before, _count)}.",
            "orders",
            orders,
            orders_before,
        )
    ]
    now_days = await facts.turnaround_days(session, company, period)
    before_days = await facts.turnaround_days(session, company, before)
    median_now, median_before = facts.median(now_days), facts.median(before_days)
    if median_now is not None:
        text = (
            f"Median turnaround {_days(median_now)} over {plural(len(now_days), 'shipped order')}"
        )
        slowest = sorted(now_days)[int(0.9 * (len(now_days) - 1))]
        text += f" (90% within {_days(slowest)})"
        if median_before is not None:
            text += f", {compared(median_now, median_before, _days)}"
        findings.append(
            Finding(text + ".", "turnaround-days", round(median_now, 2), _rounded(median_before))
        )
    findings.extend(await _remake_findings(session, company, period))
    overdue = await facts.overdue_orders(session, company, today)
    if overdue:
        findings.append(
            Finding(
                f"{plural(len(overdue), 'order is', 'orders are')} overdue now: "
                + ", ".join(order.number for order in overdue[:TOP])
                + (f" and {len(overdue) - TOP} more." if len(overdue) > TOP else "."),
                "overdue-orders",
                len(overdue),
            )
        )
    held = await facts.orders_on_hold(session, company)
    if held:
        findings.append(
            Finding(f"{plural(len(held), 'order')} on hold.", "on-hold-orders", len(held))
        )
    return findings
