"""Every error leaves the API as small JSON that never repeats what the client sent.

Request bodies carry prescriptions and patient details, and error bodies end up in
browser consoles, proxies and logs. So validation errors name the field and the rule
but drop FastAPI's ``input`` echo, our :class:`~ils.errors.ILSError` subclasses map to
fitting status codes with their (value-free) messages, a request that found every
database connection busy answers 503 with ``Retry-After``, and anything unexpected
answers 500 ``{"detail": "internal error"}`` while the traceback goes to the log with
the method and route only, never the query string, headers or body.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, ValidationException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ils.domain.orders import InvalidTransitionError
from ils.errors import (
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    ILSError,
    InvalidFieldError,
    InvalidJobStateError,
    InvalidPayloadError,
    JobNotFoundError,
    NotFoundError,
    RateLimitedError,
    StoreUnavailableError,
    UnknownQueueError,
)
from ils.web.schemas.common import ErrorOut, ValidationErrorOut

# Where FastAPI says a value came from; the client knows, so the field name suffices.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_VALUE_ERROR_PREFIXES = ("Value error, ", "Assertion failed, ")
INTERNAL_ERROR = "internal error"
#: The 503 of a request that found every database connection busy for the pool's timeout.
SERVER_BUSY = "the server is busy; try again shortly"
#: Seconds such a client is told to wait before asking again (Retry-After).
BUSY_RETRY_AFTER_S = 1
# What FastAPI answers (400) when a JSON body cannot even be read: bytes that are not
# UTF-8, nesting deeper than the parser's recursion limit.
UNREADABLE_BODY = "There was an error parsing the body"


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "right", "sphere")`` → ``"right.sphere"``; the body itself → ``"body"``."""
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in _SOURCES:
        parts = parts[1:]
    return ".".join(parts) or "body"


def clean_message(message: str) -> str:
    """pydantic's message without its ``Value error, `` prefix (our validators' text
    reads as a sentence of its own)."""
    for prefix in _VALUE_ERROR_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` from pydantic errors: no ``input``, no ``ctx``."""
    details = []
    for error in errors:
        loc = error.get("loc", ())
        field = "body" if error.get("type") == "json_invalid" else field_name(loc)
        details.append({"field": field, "message": clean_message(str(error.get("msg", "")))})
    return details


def payload_details(problems: Sequence[str]) -> list[dict[str, str]]:
    """``InvalidPayloadError.problems`` (``"field: reason"``) in the same shape."""
    details = []
    for problem in problems:
        field, sep, message = problem.partition(": ")
        details.append(
            {"field": field, "message": message} if sep else {"field": "", "message": problem}
        )
    return details


def status_for(exc: ILSError) -> int:
    """The HTTP status of one of our errors reaching a route: the one place a domain
    error becomes HTTP, so services and queries never import the web framework.

    ``InvalidPayloadError`` and ``InvalidFieldError`` 422 (field list like a validation
    error), ``NotFoundError``, ``JobNotFoundError`` and ``UnknownQueueError`` 404,
    ``ForbiddenError`` 403, ``ConflictError``, ``InvalidJobStateError`` and the order
    lifecycle's ``InvalidTransitionError`` 409 (the request conflicts with the record's
    state), ``RateLimitedError`` 429, ``StoreUnavailableError`` and
    ``ConfigurationError`` 503 (ours, not the client's; retrying later may work), any
    other ``ILSError`` 400.
    """
    if isinstance(exc, InvalidPayloadError | InvalidFieldError):
        return 422
    if isinstance(exc, NotFoundError | JobNotFoundError | UnknownQueueError):
        return 404
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, ConflictError | InvalidJobStateError | InvalidTransitionError):
        return 409
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, StoreUnavailableError | ConfigurationError):
        return 503
    return 400


def field_details(exc: InvalidFieldError) -> list[dict[str, str]]:
    """``InvalidFieldError`` as the one-item ``[{"field", "message"}]`` list a schema
    error of that field gives (an empty field name stands for the whole body)."""
    return [{"field": exc.field or "body", "message": exc.message}]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": validation_details(exc.errors())}, status_code=422)


async def _ils_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ILSError)
    status = status_for(exc)
    if isinstance(exc, InvalidPayloadError):
        return JSONResponse({"detail": payload_details(exc.problems)}, status_code=status)
    if isinstance(exc, InvalidFieldError):
        return JSONResponse({"detail": field_details(exc)}, status_code=status)
    if isinstance(exc, ConfigurationError):
        # Configuration messages may name hosts and URLs: keep them in the log.
        logging.getLogger(__name__).error("configuration error: %s", exc)
        return JSONResponse({"detail": "service unavailable"}, status_code=status)
    # A 429 that knows when asking again helps says so (RFC 9110 Retry-After, seconds).
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(exc, RateLimitedError) and isinstance(retry_after, int):
        headers = {"Retry-After": str(max(retry_after, 1))}
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    """Every database connection stayed busy for the pool's whole timeout: the server is
    overloaded, not broken, so 503 with ``Retry-After`` (what clients and load
    balancers back off on) instead of a 500, and one warning line instead of a stack
    trace per request (1,000 users on a saturated web process logged dozens of them,
    bench/users.py --deployment full)."""
    logging.getLogger(__name__).warning(
        "%s %s answered 503: every database connection was busy (%s)",
        request.method,
        _route_of(request.scope),
        type(exc).__name__,
    )
    return JSONResponse(
        {"detail": SERVER_BUSY},
        status_code=503,
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
    )


def value_free_summary(exc: BaseException) -> str | None:
    """A description of ``exc`` without the data its own text would quote, or ``None``
    when its text is safe to log as it is.

    A driver's message quotes the offending values (PostgreSQL: ``Key (email)=(...)
    already exists``) and SQLAlchemy's adds the SQL parameters; pydantic's and FastAPI's
    validation errors print every ``input_value``. For those, only types, fields,
    constraint and statement are kept.
    """
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        cause = orig.__cause__ if orig is not None else None
        constraint = getattr(orig, "constraint_name", None) or getattr(
            cause, "constraint_name", None
        )
        return (
            f"{type(exc).__name__} ({type(cause or orig).__name__}"
            f"{f', constraint {constraint}' if constraint else ''}), "
            f"statement: {(exc.statement or '')[:500]}"
        )
    if isinstance(exc, ValidationError | ValidationException):
        errors = exc.errors()
        fields = "; ".join(
            f"{field_name(error.get('loc', ()))}: {error.get('type')}" for error in errors[:20]
        )
        return f"{type(exc).__name__} ({len(errors)} errors): {fields}"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        if isinstance(current, DBAPIError):
            break  # its causes are the driver's errors, summed up by value_free_summary
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain[::-1]


def log_internal_error(logger: logging.Logger, where: str, exc: BaseException) -> None:
    """Log ``exc`` with its stack; values quoted by known exceptions (anywhere in the
    chain of causes) are left out."""
    chain = _chain(exc)
    summaries = [value_free_summary(link) for link in chain]
    if all(summary is None for summary in summaries):
        logger.error("internal error in %s", where, exc_info=exc)
        return
    parts = []
    for link, summary in zip(chain, summaries, strict=True):
        stack = "".join(traceback.format_tb(link.__traceback__))
        text = summary if summary is not None else f"{type(link).__name__}: {link}"
        parts.append(f"Traceback (most recent call last):\n{stack}{text}")
    logger.error(
        "internal error in %s: %s\n%s",
        where,
        summaries[-1] or type(exc).__name__,
        "\n\nwhich led to:\n".join(parts),
    )


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else str(scope.get("path", "?"))


class InternalErrorMiddleware:
    """Turns an unexpected exception into 500 ``{"detail": "internal error"}``.

    A plain ASGI middleware rather than an ``Exception`` handler: Starlette re-raises
    after calling such a handler, so the server would log the error a second time,
    with its own formatting (and database values, see :func:`log_internal_error`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger(__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log_internal_error(self.logger, f"{scope.get('method')} {_route_of(scope)}", exc)
            if started:
                raise  # too late for a response of our own; the server closes the connection
            response = JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the catch-all middleware on ``app``, and make its
    OpenAPI document describe the bodies they answer (:func:`document_errors`)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ILSError, _ils_error)
    app.add_exception_handler(PoolTimeoutError, _pool_exhausted)
    app.add_middleware(InternalErrorMiddleware)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches its document on app.openapi_schema: post-process it once.
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_JSON = "application/json"
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _component_ref(schema: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    """A ``$ref`` to ``model`` in ``schema``'s components, adding it (and the models it
    nests) when no route has brought it in yet."""
    template = "#/components/schemas/{model}"
    definition = model.model_json_schema(ref_template=template)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, nested in definition.pop("$defs", {}).items():
        components.setdefault(name, nested)
    components.setdefault(model.__name__, definition)
    return {"$ref": template.format(model=model.__name__)}


def _reads_json(operation: dict[str, Any]) -> bool:
    content = operation.get("requestBody", {}).get("content", {})
    return any(kind == _JSON or kind.endswith("+json") for kind in content)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's OpenAPI document) with the error bodies the API really answers.

    FastAPI documents every 422 as its own ``HTTPValidationError`` (``loc``, ``msg``,
    ``type``), but :func:`_validation_error` answers ``{"detail": [{"field",
    "message"}]}``; and the 400 FastAPI itself answers for a JSON body it cannot read
    (not UTF-8, nested too deep) is documented nowhere. Clients generated from the
    document, and schemathesis' conformance checks, would believe the schema and be
    wrong. Done once over the whole document, so no route can forget it: every 422
    gets the real body, every operation reading a JSON body gets its 400 and 422, and
    FastAPI's two error models leave the components.
    """
    invalid = {
        "description": "invalid input, per field",
        "content": {_JSON: {"schema": _component_ref(schema, ValidationErrorOut)}},
    }
    unreadable = {
        "description": f"the body is not JSON that can be read: {UNREADABLE_BODY!r}",
        "content": {_JSON: {"schema": ErrorOut.model_json_schema()}},
    }
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if _reads_json(operation):
                responses.setdefault("400", unreadable)
                responses.setdefault("422", invalid)
            if "422" in responses:
                described = responses["422"].get("description")
                responses["422"] = {**invalid}
                if described and described != "Validation Error":
                    responses["422"]["description"] = described
            operation["responses"] = dict(sorted(responses.items()))
    if "#/components/schemas/HTTPValidationError" not in json.dumps(schema.get("paths", {})):
        for name in _FASTAPI_ERROR_SCHEMAS:
            schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema
