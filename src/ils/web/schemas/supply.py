"""Request and response bodies of purchase orders (a lab buying from a supplier).

The request names products and quantities only: the price is the supplier's catalogue
price at the time of ordering, copied onto the line, so a lab cannot set its own.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final

from pydantic import Field, field_validator

from ils.domain.supply import PurchaseOrderStatus
from ils.web.schemas.common import Day, InputModel, OutputModel, RecordId

MAX_PO_LINES: Final = 200
MAX_PO_QUANTITY: Final = 1_000_000


class PurchaseOrderLineIn(InputModel):
    """A product of the supplier's catalogue and how many."""

    product_id: RecordId
    quantity: int = Field(ge=1, le=MAX_PO_QUANTITY)


class PurchaseOrderCreate(InputModel):
    """A purchase order to one supplier, each product once."""

    supplier_id: RecordId
    lines: list[PurchaseOrderLineIn] = Field(min_length=1, max_length=MAX_PO_LINES)
    expected_on: Day | None = Field(
        default=None, description="Default: today plus the longest lead time of the lines."
    )

    @field_validator("lines")
    @classmethod
    def _each_product_once(cls, lines: list[PurchaseOrderLineIn]) -> list[PurchaseOrderLineIn]:
        """Two lines of one product are a form error; the supplier would see a puzzle."""
        if len({line.product_id for line in lines}) != len(lines):
            raise ValueError("must list each product once")
        return lines


class PurchaseOrderLineOut(OutputModel):
    """A line with the product's catalogue details and the agreed price."""

    id: str
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    total_cents: int


class PurchaseOrderOut(OutputModel):
    """A purchase order as lab and supplier both see it."""

    id: str
    number: str
    company_id: str = Field(description="The buying lab.")
    supplier_id: str
    status: PurchaseOrderStatus
    created_by: str | None
    expected_on: date | None
    lines: list[PurchaseOrderLineOut]
    total_cents: int = Field(description="Net of VAT.")
    created_at: datetime
