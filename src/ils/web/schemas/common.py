"""Field types and models every API area shares: ids, bounded texts, paging.

Texts are bounded and checked for control characters at the edge, so a database
column never receives more than it holds (a 500 on PostgreSQL, silent on SQLite) and a
name or reference can never smuggle a line break into an e-mail or a PDF.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ils.domain.types import ID_LENGTH

# The job payloads' own text rules: what a request stores ends up in e-mails, PDFs and
# notifications, so it obeys the same rules (one line without control characters; notes
# without NUL, which PostgreSQL cannot store).
from ils.jobs.payloads.base import _multi_line, _single_line

T = TypeVar("T")

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200

# A record id in a body or path: the 32-hex ids of ils.domain.types.new_id. Only the
# length is checked here; whether it exists (and is ours) is the router's 422 or 404.
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=ID_LENGTH)]


_LINE: Final = AfterValidator(_single_line)
_TEXT: Final = AfterValidator(_multi_line)


def _bounded(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


# One-line texts by the column width they go to (codes, names, descriptions).
Line64 = Annotated[str, _bounded(64), _LINE]
Line100 = Annotated[str, _bounded(100), _LINE]
Line500 = Annotated[str, _bounded(500), _LINE]
# Multi-line notes, and chat questions (the AI job's message limit).
Notes = Annotated[str, _bounded(5000), _TEXT]
ChatText = Annotated[str, _bounded(4000), _TEXT]


class InputModel(BaseModel):
    """Base of request bodies: an unknown field is an error, not silently dropped, so a
    misspelt ``cylnder`` cannot turn into a lens ground without its cylinder."""

    model_config = ConfigDict(extra="forbid")


class OutputModel(BaseModel):
    """Base of responses, built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, the total matching the filters, and the window."""

    items: list[T]
    total: int = Field(description="How many records match the filters, over all pages.")
    limit: int
    offset: int


class ErrorOut(BaseModel):
    """The body of a 401, 403, 404 or 409: one sentence, never the values sent."""

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
