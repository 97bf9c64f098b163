"""The building blocks every job payload model shares: base class and field types.

Payload models are the contract with the platform's TypeScript (BullMQ) service, so
they serialise to exactly its camelCase field names and accept exactly what it sends.
They also guard rule 4 of docs/design.md: a payload carries identifiers and short,
bounded texts, never records, so every field here is tightly constrained. Validation
messages we write ourselves never quote the rejected value, because they end up in
logs and in the monitoring API.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from types import MappingProxyType
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

# -- identifiers --------------------------------------------------------------------

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
ID_MAX_LENGTH: Final = 64
# At most this many ids in one list field: enough for a company's catalogue, small
# enough to keep a payload far below the store's size limit.
ID_LIST_MAX: Final = 1000


def _coerce_id(value: object) -> object:
    """Accept UUID objects (our ORM) and JSON integers (numeric keys) as id strings.

    The TypeScript service may send numeric primary keys as JSON numbers; a worker
    must not fail such a job permanently over the representation. Booleans are ints
    in Python but never ids, so they are left for the string check to reject.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# The constraints come before the BeforeValidator so that they stay those of the
# string schema (pydantic's string messages) and the coercion runs ahead of them.
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN),
    BeforeValidator(_coerce_id),
]


def _no_duplicates(values: list[str]) -> list[str]:
    """Reject repeated ids: a duplicate is a caller bug and would double the work."""
    if len(set(values)) != len(values):
        raise ValueError("must not contain duplicates")
    return values


IdentifierList = Annotated[
    list[Identifier],
    Field(max_length=ID_LIST_MAX),
    AfterValidator(_no_duplicates),
]

# -- dates --------------------------------------------------------------------------

_DATE_SHAPE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _coerce_date(value: object) -> object:
    """Let Python callers pass a ``datetime.date``; the payload keeps the ISO string.

    A ``datetime`` is refused: which calendar day it means depends on a time zone the
    payload cannot carry, so the caller must decide and pass the date.
    """
    if isinstance(value, dt.datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _real_date(value: str) -> str:
    """Check the string is a calendar date; our own message, never the value.

    ``date.fromisoformat`` would also accept ``20240101`` and quotes bad input in its
    error message, hence the shape check first and a message of our own.
    """
    if not _DATE_SHAPE.fullmatch(value):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real calendar date (YYYY-MM-DD)") from None
    return value


IsoDate = Annotated[str, BeforeValidator(_coerce_date), AfterValidator(_real_date)]

# -- texts --------------------------------------------------------------------------

# C0 controls and DEL, minus the ones a multi-line text legitimately holds. NUL is
# refused everywhere: PostgreSQL text columns cannot store it.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _single_line(value: str) -> str:
    """Refuse line breaks and control characters in one-line texts.

    A subject with CR/LF is e-mail header injection; a title with control characters
    breaks the notification list. Neither is ever legitimate.
    """
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return value


def _multi_line(value: str) -> str:
    """Allow line breaks and tabs in body texts, but no other control characters."""
    if _CONTROL_MULTILINE.search(value):
        raise ValueError("must not contain control characters")
    return value


# One-line texts (e-mail subject, notification title, names, short codes). Subjects,
# titles and names follow one rule, so they are one type under the names the payload
# models read best with.
_Line200 = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_single_line)
]
Subject = _Line200
Title = _Line200
CompanyName = _Line200
# Tracking numbers, carriers, order statuses.
ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_single_line)
]
# Multi-line body texts.
Content = Annotated[
    str, StringConstraints(min_length=1, max_length=20_000), AfterValidator(_multi_line)
]
Message = Annotated[
    str, StringConstraints(min_length=1, max_length=4_000), AfterValidator(_multi_line)
]
Summary = Annotated[
    str, StringConstraints(min_length=1, max_length=2_000), AfterValidator(_multi_line)
]

# -- links --------------------------------------------------------------------------

URL_MAX_LENGTH: Final = 2000
_ABSOLUTE_URL: Final = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?([/?#]\S*)?", re.IGNORECASE)


def _safe_link(value: str) -> str:
    """Accept an app-relative path or an http(s) URL, nothing a browser could abuse.

    Links end up as ``href`` in e-mails and the web app: ``javascript:`` and ``data:``
    URLs would run code, and ``//host`` or ``/\\host`` are read by browsers as links
    to another site, so a relative link must be a plain path on our own host.
    """
    if any(ch.isspace() for ch in value) or _CONTROL.search(value):
        raise ValueError("must not contain spaces or control characters")
    if value.startswith("/"):
        if value.startswith(("//", "/\\")):
            raise ValueError("must be a path on this site, not a link to another host")
        return value
    if _ABSOLUTE_URL.fullmatch(value):
        return value
    raise ValueError("must be a path starting with '/' or an http(s) URL")


Link = Annotated[
    str,
    StringConstraints(min_length=1, max_length=URL_MAX_LENGTH),
    AfterValidator(_safe_link),
]

# -- enumerations -------------------------------------------------------------------

NotificationPriority = Literal["urgent", "high", "medium", "low"]
# BullMQ order: 1 is served first.
NOTIFICATION_PRIORITIES: Final = MappingProxyType({"urgent": 1, "high": 2, "medium": 3, "low": 4})

ForecastDays = Annotated[int, Field(strict=True, ge=1, le=365)]

# -- base model ---------------------------------------------------------------------


class JobPayload(BaseModel):
    """Base of every payload model: camelCase JSON, nothing unknown, immutable.

    ``extra="forbid"`` makes a payload with a stray field (a patient name added by a
    careless producer) fail loudly instead of being carried through Redis.
    ``populate_by_name`` lets Python code (the helpers) use the snake_case names
    while the JSON stays in the TypeScript service's camelCase.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
        frozen=True,
    )

    def job_priority(self) -> int | None:
        """The BullMQ priority this payload asks for, or ``None`` for the type's default.

        Only payloads whose priority is part of their data (system notifications)
        override this.
        """
        return None
