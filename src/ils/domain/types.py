"""Column types and helpers shared by every domain model.

Why custom types:

* ``Fixed2``: dioptres and millimetres must round-trip exactly on SQLite (which has no
  real DECIMAL and would hand back floats) and PostgreSQL alike, so they are stored as
  integer hundredths and come back as :class:`~decimal.Decimal` with two places.
* ``UtcDateTime``: SQLite keeps no offset, so an aware datetime would come back naive.
  This type stores UTC and always returns aware UTC datetimes on both databases.
* ``StrEnumType``: enumerations are stored as plain strings (no database enum types,
  so adding a value needs no migration) but load back as their ``StrEnum``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, Dialect, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column
from sqlalchemy.types import TypeDecorator

#: Length of every primary key made by :func:`new_id` (uuid4 hex).
ID_LENGTH = 32
#: Longest job id accepted by the job system (``ils_jobs.id``).
JOB_ID_LENGTH = 255
#: RFC 5321 limit of an e-mail address.
EMAIL_LENGTH = 320

E = TypeVar("E", bound=StrEnum)

_HUNDRED = Decimal(100)
_TWO_PLACES = Decimal("0.01")


def new_id() -> str:
    """A new primary key: 32 lower-case hex digits of a random uuid4.

    Random rather than sequential ids, so a job payload or URL reveals nothing about
    how many records a company has, and ids can be made before the row is flushed.
    """
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (default of ``created_at`` columns)."""
    return datetime.now(UTC)


def to_hundredths(value: Decimal | int | str) -> int:
    """``value`` in integer hundredths, refusing anything that would lose precision.

    Floats are refused outright: ``0.1`` is not one tenth in binary, and a silently
    rounded prescription is worse than an error. Pass ``Decimal`` (pydantic gives it
    for ``Decimal`` fields), ``int`` or a string.

    Raises:
        TypeError: ``value`` is a float, a bool or another type.
        ValueError: ``value`` is not finite or has more than two decimals.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"Fixed2 takes Decimal, int or str, not {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    scaled = number * _HUNDRED
    if scaled != scaled.to_integral_value():
        raise ValueError(f"more than two decimals: {value!r}")
    return int(scaled)


def from_hundredths(value: int) -> Decimal:
    """Integer hundredths back to a two-place ``Decimal`` (``125`` → ``Decimal('1.25')``)."""
    return (Decimal(value) / _HUNDRED).quantize(_TWO_PLACES)


class Fixed2(TypeDecorator[Decimal]):
    """An exact decimal with at most two places, stored as integer hundredths.

    Comparisons in queries go through the same conversion
    (``Order.right_sphere > Decimal("2")`` compares with 200), so filters stay exact.
    The range is that of a 32-bit integer: ±21 million, far beyond any optical value.
    """

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else to_hundredths(value)

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        return "NULL" if value is None else str(to_hundredths(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_hundredths(int(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only takes aware values and returns aware UTC.

    Naive datetimes are refused: guessing their zone is how off-by-an-hour bugs in due
    dates and briefings start. On SQLite the value is stored as naive UTC (so string
    comparison orders correctly) and the UTC zone is put back on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UtcDateTime takes datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("UtcDateTime needs a timezone-aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` stored as ``VARCHAR(length)``, loaded back as the enum member.

    Binding a string that is not a member raises ``ValueError`` before it reaches the
    database, so a typo cannot store a status nobody handles.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 32) -> None:
        longest = max(len(member.value) for member in enum_class)
        if longest > length:
            raise ValueError(f"{enum_class.__name__} values need length >= {longest}")
        super().__init__(length=length)
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        if value is None:
            return "NULL"
        return "'" + self.enum_class(value).value + "'"

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum_class


class IdMixin:
    """The primary key every domain table uses: a :func:`new_id` string.

    Job payloads carry these ids, so they are made by Python before the flush.
    """

    id: Mapped[str] = mapped_column(
        String(ID_LENGTH), primary_key=True, default=new_id, sort_order=-100
    )


def foreign_id(
    target: str, *, ondelete: str | None = None, index: bool | None = None
) -> MappedColumn[Any]:
    """A column holding the :class:`IdMixin` key of another table (``"orders.id"``).

    Written once so every reference has the length of the key it points at; whether
    it may be empty follows from its ``Mapped[...]`` annotation, as for any column.
    """
    return mapped_column(String(ID_LENGTH), ForeignKey(target, ondelete=ondelete), index=index)


class CreatedAtMixin:
    """A ``created_at`` column set by Python (from :func:`utcnow`) on insert.

    Set by the application, not a server default, so SQLite and PostgreSQL store the
    same aware UTC value and a test can pass its own time.
    """

    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, sort_order=100)


class TimestampMixin(CreatedAtMixin):
    """``created_at`` plus an ``updated_at`` the ORM refreshes on every update."""

    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow, sort_order=101
    )
