"""Suppliers' catalogues, labs' stock and usage, and labs' purchase orders.

``daily_sales`` keeps one row per (lab, product, day) of units used: the input of the
AI stock forecasts, small enough to keep for years.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ils.db.engine import Base
from ils.domain.companies import Company, User
from ils.domain.types import IdMixin, StrEnumType, TimestampMixin, foreign_id


class ProductCategory(StrEnum):
    """What a catalogue item is."""

    LENS_BLANK = "lens_blank"
    FRAME = "frame"
    COATING = "coating"
    CONSUMABLE = "consumable"


class PurchaseOrderStatus(StrEnum):
    """Where a lab's order to a supplier stands."""

    DRAFT = "draft"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class Product(IdMixin, TimestampMixin, Base):
    """An item of a supplier's (``company_id``) catalogue; ``sku`` is unique per supplier."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("company_id", "sku", name="uq_products_company_sku"),
        Index("ix_products_company_category", "company_id", "category"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_non_negative"),
        CheckConstraint("lead_time_days >= 0", name="lead_time_non_negative"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[ProductCategory] = mapped_column(StrEnumType(ProductCategory, 16))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    lead_time_days: Mapped[int] = mapped_column(Integer, default=0)

    company: Mapped[Company] = relationship()


class StockLevel(IdMixin, TimestampMixin, Base):
    """A lab's (``company_id``) stock of one product; one row per (lab, product)."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("company_id", "product_id", name="uq_stock_levels_company_product"),
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reorder_point >= 0", name="reorder_point_non_negative"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    product_id: Mapped[str] = foreign_id("products.id", index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    #: Below this, the lab should reorder (forecasts and insights flag it).
    reorder_point: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship()


class DailySale(IdMixin, Base):
    """Units of a product a lab used on one day (local date of the lab)."""

    __tablename__ = "daily_sales"
    __table_args__ = (
        UniqueConstraint(
            "company_id", "product_id", "day", name="uq_daily_sales_company_product_day"
        ),
        Index("ix_daily_sales_company_day", "company_id", "day"),
        CheckConstraint("units >= 0", name="units_non_negative"),
    )

    company_id: Mapped[str] = foreign_id("companies.id")
    product_id: Mapped[str] = foreign_id("products.id", index=True)
    day: Mapped[date] = mapped_column(Date)
    units: Mapped[int] = mapped_column(Integer)

    product: Mapped[Product] = relationship()


class PurchaseOrder(IdMixin, TimestampMixin, Base):
    """A lab's (``company_id``) order to a supplier (``supplier_id``).

    ``number`` (``PO-YYYY-NNNNN``) comes from the lab's own sequence and is unique per
    lab, like invoice numbers per issuer. Lines load with the order (``selectin``).
    """

    __tablename__ = "purchase_orders"
    __table_args__ = (
        UniqueConstraint("company_id", "number", name="uq_purchase_orders_company_number"),
        Index("ix_purchase_orders_company_status", "company_id", "status"),
        Index("ix_purchase_orders_supplier_status", "supplier_id", "status"),
        CheckConstraint("supplier_id <> company_id", name="supplier_is_not_buyer"),
    )

    number: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[str] = foreign_id("companies.id")
    supplier_id: Mapped[str] = foreign_id("companies.id")
    status: Mapped[PurchaseOrderStatus] = mapped_column(
        StrEnumType(PurchaseOrderStatus, 16), default=PurchaseOrderStatus.DRAFT
    )
    created_by: Mapped[str | None] = foreign_id("users.id", index=True)
    expected_on: Mapped[date | None] = mapped_column(Date)

    company: Mapped[Company] = relationship(foreign_keys=[company_id])
    supplier: Mapped[Company] = relationship(foreign_keys=[supplier_id])
    creator: Mapped[User | None] = relationship(foreign_keys=[created_by])
    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="purchase_order", cascade="all, delete-orphan", lazy="selectin"
    )

    def total_cents(self) -> int:
        """Sum of the loaded lines (purchase prices are net of VAT)."""
        return sum(line.quantity * line.unit_price_cents for line in self.lines)


class PurchaseOrderLine(IdMixin, Base):
    """A product and quantity on a purchase order, at the price agreed then."""

    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_non_negative"),
    )

    purchase_order_id: Mapped[str] = foreign_id(
        "purchase_orders.id", ondelete="CASCADE", index=True
    )
    product_id: Mapped[str] = foreign_id("products.id", index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)

    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
