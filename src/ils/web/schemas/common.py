"""Field types and models every API area shares: ids, bounded texts, days, paging.

Texts are bounded and checked for control characters at the edge, so a database
column never receives more than it holds (a 500 on PostgreSQL, silent on SQLite) and a
name or reference can never smuggle a line break into an e-mail or a PDF. Numbers and
days are bounded the same way (paging, dates between 1900 and 2200): a value past what
the database or ``datetime`` can hold is the client's 422, never our 500. And input is
taken literally: ``true`` is no count of 1 and ``0`` no date (see :class:`InputModel`).
"""

from __future__ import annotations

import re
import types
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Generic, Self, TypeVar, Union, get_args, get_origin

from fastapi import Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ils.domain.records import read_fields
from ils.domain.types import ID_LENGTH

# The job payloads' own text rules: what a request stores ends up in e-mails, PDFs and
# notifications, so it obeys the same rules (one line without control characters; notes
# without NUL, which PostgreSQL cannot store).
from ils.jobs.payloads.base import _multi_line, _single_line

T = TypeVar("T")

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
#: Far past any list's end, far below what SQLite's 64-bit OFFSET overflows on.
MAX_OFFSET: Final = 1_000_000

# The paging query parameters of every list, defined once.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]

# A record id in a body or path: the 32-hex ids of ils.domain.types.new_id. Only the
# length is checked here; whether it exists (and is ours) is the router's 422 or 404.
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=ID_LENGTH)]


#: Separators that end a line in some readers (JavaScript, JSON-in-HTML, many editors)
#: without being a control character.
_LINE_SEPARATORS: Final = frozenset({"\u2028", "\u2029"})
#: What a multi-line text may hold of the control characters.
_TEXT_CONTROLS: Final = frozenset({"\t", "\n", "\r"})


def _one_line(value: str) -> str:
    """Refuse every control character (C0, DEL and C1, such as U+0085 "next line") and
    the Unicode line and paragraph separators: each can break a header, a log line or a
    one-line field of a PDF. The payloads' rule (C0 and DEL) runs first."""
    value = _single_line(value)
    if any(ch in _LINE_SEPARATORS or unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must be a single line without control characters")
    return value


def _text(value: str) -> str:
    """Multi-line texts keep tabs and line breaks, and refuse other control characters
    (C1 included)."""
    value = _multi_line(value)
    if any(ch not in _TEXT_CONTROLS and unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


_LINE: Final = AfterValidator(_one_line)
_TEXT: Final = AfterValidator(_text)


def _bounded(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


# One-line texts by the column width they go to (codes, names, descriptions).
Line64 = Annotated[str, _bounded(64), _LINE]
Line100 = Annotated[str, _bounded(100), _LINE]
Line500 = Annotated[str, _bounded(500), _LINE]
# Multi-line notes, and chat questions (the AI job's message limit).
Notes = Annotated[str, _bounded(5000), _TEXT]
ChatText = Annotated[str, _bounded(4000), _TEXT]

#: The days the API takes, in a body or a query. Outside them a day is a typing slip,
#: and near ``date.max`` the day after no longer exists (a 500 once).
EARLIEST_DAY: Final = date(1900, 1, 1)
LATEST_DAY: Final = date(2200, 12, 31)
_ISO_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_A_DAY: Final = "must be a date written YYYY-MM-DD"


def _written_day(value: object) -> object:
    """Only ``YYYY-MM-DD`` (or a ``date``) is a day: pydantic would read ``0`` or
    ``"0"`` as 1970-01-01, a silent wrong date of birth."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        raise ValueError(_NOT_A_DAY)
    return value


DayT = TypeVar("DayT", bound=date)


def _within_years(value: DayT) -> DayT:
    """A day (or a moment: its own calendar day) within the years the API takes."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must be between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


Day = Annotated[date, BeforeValidator(_written_day), AfterValidator(_within_years)]
#: A moment in a body (schedule start and end): within the same years, so a run time
#: computed from it stays within what ``datetime`` holds.
Moment = Annotated[datetime, AfterValidator(_within_years)]

_NUMBERS: Final = (int, float, Decimal)
_TIMES: Final = (date, datetime)
_NUMBER_TEXT: Final = re.compile(r"[+-]?\d+(\.\d*)?")


def _kinds(annotation: Any) -> set[Any]:
    """The types a field annotation admits at its top level (unions unpacked)."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType or origin is Annotated:
        args = get_args(annotation)
        found: set[Any] = set()
        for arg in args[1:] if origin is Annotated else args:
            found |= _kinds(arg)
        return found if origin is not Annotated else found | _kinds(args[0])
    return {origin or annotation}


def refuse_lax(value: Any, annotation: Any) -> None:
    """Refuse what pydantic would coerce although no client means it: ``true`` for a
    number (stored as 1) and a number for a date (seconds since 1970)."""
    kinds = _kinds(annotation)
    if Any in kinds or bool in kinds:
        return
    numeric = any(isinstance(kind, type) and issubclass(kind, _NUMBERS) for kind in kinds)
    timed = any(isinstance(kind, type) and issubclass(kind, _TIMES) for kind in kinds)
    if isinstance(value, bool):
        if numeric:
            raise ValueError("must be a number, not true or false")
        return
    is_number = isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()) is not None
    )
    if timed and not numeric and is_number:
        raise ValueError("must be a date or time written out (ISO 8601), not a number")


class InputModel(BaseModel):
    """Base of request bodies: an unknown field is an error, not silently dropped, so a
    misspelt ``cylnder`` cannot turn into a lens ground without its cylinder."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _literal_input(cls, value: Any, info: ValidationInfo) -> Any:
        """No ``true`` as 1, no number as a date, in any field of any body (nested
        bodies are input models too), whatever type the field was given."""
        if info.field_name is not None and isinstance(value, bool | int | float | str):
            refuse_lax(value, cls.model_fields[info.field_name].annotation)
        return value


class OutputModel(BaseModel):
    """Base of responses, built from ORM rows (or records with the fields as
    attributes)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def read_from(cls, source: object, *, prefix: str = "", **given: Any) -> Self:
        """The response read from ``source`` as ``from_attributes`` validation reads
        a row: each field from the attribute of the same name (after ``prefix``:
        ``frame_`` for an order's frame columns), except the fields ``given`` (derived
        values, nested bodies, renamed attributes). A response that mirrors a record
        thus names its fields once, in the model, rather than again in each builder;
        validation runs as if the fields had been passed one by one."""
        return cls.model_validate(read_fields(source, cls.model_fields, prefix=prefix, given=given))


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, the total matching the filters, and the window."""

    items: list[T]
    total: int = Field(description="How many records match the filters, over all pages.")
    limit: int
    offset: int


class ErrorOut(BaseModel):
    """The body of a 400, 401, 403, 404, 409 or 429: one sentence, never the values sent."""

    detail: str


class FieldErrorOut(BaseModel):
    """One problem of a 422: the field (dotted path, ``right.sphere``) and the rule."""

    field: str
    message: str


class ValidationErrorOut(BaseModel):
    """The body of a 422 (see ``ils.web.errors``): every problem at once."""

    detail: list[FieldErrorOut]


_ERROR_TEXTS: Final = {
    401: "not signed in",
    403: "not allowed for your role or company (or CSRF token missing or wrong)",
    404: "not found, or another company's record",
    409: "not possible in the record's current state",
    429: "too many requests of this kind just now; try again shortly",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error codes a route answers, with their bodies;
    422 always, in the API's own shape rather than FastAPI's default."""
    documented: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": _ERROR_TEXTS[code]} for code in codes
    }
    documented[422] = {"model": ValidationErrorOut, "description": "invalid input, per field"}
    return documented
