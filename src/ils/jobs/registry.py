"""Handlers registered by payload type: the model class names the job it handles.

A handler is a plain async function ``handler(payload, ctx) -> result``: it receives
the validated pydantic payload and a :class:`JobContext` for progress and log lines,
and returns something JSON-able (stored as the job's result).

Handlers are registered by their payload model (``registry.register(OrderSheetPdf,
render_order_sheet)``), not by queue and job name: the job-type catalogue already maps
(queue, job name) to a model, so the model alone finds the job, and :data:`Handler`
``[P]`` lets the type checker hold each handler to the payload it will receive. No
worker keeps lists of job names, and no handler narrows its payload at run time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ils.errors import ConfigurationError
from ils.jobs.job_types import JobType, JobTypes, validate_payload


class JobContext(Protocol):
    """What a running handler can tell the job system about its job."""

    @property
    def job_id(self) -> str:
        """The job's id in its store (stable across retries: use it for idempotency)."""
        ...

    @property
    def queue(self) -> str:
        """The queue key."""
        ...

    @property
    def attempt(self) -> int:
        """This attempt's number, 1 for the first."""
        ...

    @property
    def store(self) -> str:
        """``"redis"`` or ``"local"``."""
        ...

    async def progress(self, value: int | float | dict[str, Any]) -> None:
        """Report progress (0-100, or a small JSON object)."""
        ...

    async def log(self, line: str, *, session: AsyncSession | None = None) -> None:
        """Append a log line to the job (no patient data).

        With ``session`` (the handler's open write transaction) the line is stored in
        that transaction when the job's store is in the same database (local mode):
        no transaction of its own, and it exists exactly when the handler's work
        commits. Otherwise it is written at once."""
        ...


PayloadT = TypeVar("PayloadT", bound=BaseModel)

#: A handler of jobs whose payload is a ``PayloadT``. A handler that accepts a wider
#: type (``BaseModel``, a union of models) also fits, since it takes any payload of
#: the job; one for another model does not, which is what the type checker catches.
Handler = Callable[[PayloadT, JobContext], Awaitable[Any]]

#: Work a process does while it serves a queue, besides its jobs (the schedule
#: claimers of the ``scheduled`` queue): runs until the event is set.
Service = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Registration(Generic[PayloadT]):
    """A handler bound to its job type; ``model`` is the job type's model, kept with
    its static type so that :meth:`parse` returns what ``handler`` accepts."""

    job_type: JobType
    model: type[PayloadT]
    handler: Handler[PayloadT]

    def parse(self, data: dict[str, Any]) -> PayloadT:
        """Validate a received payload again, as the worker must.

        Raises:
            InvalidPayloadError: the payload does not fit the model (permanent).
        """
        payload = validate_payload(self.job_type, data)
        if not isinstance(payload, self.model):
            # Unreachable through HandlerRegistry, which binds a model to its own job
            # type; a hand-made Registration that does not must not run its handler.
            raise TypeError(f"expected {self.model.__name__}, not {type(payload).__name__}")
        return payload


class HandlerRegistry:
    """The handlers one worker process knows, by (queue, job name)."""

    def __init__(self, job_types: JobTypes) -> None:
        self.job_types = job_types
        self._handlers: dict[tuple[str, str], Registration[Any]] = {}
        self._services: dict[str, list[Service]] = {}

    def job_type_of(self, model: type[BaseModel]) -> JobType:
        """The catalogue's job type whose payload model is ``model``.

        Raises:
            ConfigurationError: ``model`` is in no job type, or in several (then the
                model alone does not say which job a handler is for).
        """
        found = [job_type for job_type in self.job_types if job_type.model is model]
        if not found:
            raise ConfigurationError(
                f"payload model {model.__name__} is not a job type of the catalogue"
            )
        if len(found) > 1:
            jobs = ", ".join(f"{jt.queue}/{jt.name}" for jt in found)
            raise ConfigurationError(f"payload model {model.__name__} is the model of {jobs}")
        return found[0]

    def register(self, model: type[PayloadT], handler: Handler[PayloadT]) -> None:
        """Bind ``handler`` to the job type whose payload model is ``model``.

        Fails at start-up rather than when a job comes: a model outside the catalogue,
        or a job that has a handler already (two registrars claiming one job would
        otherwise leave the last one silently in charge).

        Raises:
            ConfigurationError: unknown model, or the job has a handler already.
        """
        registration = Registration(self.job_type_of(model), model, handler)
        key = (registration.job_type.queue, registration.job_type.name)
        if key in self._handlers:
            raise ConfigurationError(
                f"job {key[0]}/{key[1]} ({model.__name__}) has a handler already"
            )
        self._handlers[key] = registration

    def replace(self, model: type[PayloadT], handler: Handler[PayloadT]) -> None:
        """Bind ``handler`` to ``model``'s job type in place of any handler it has.

        The deliberate form of a second registration, for registrars that wrap or stand
        in for the built-in handlers (tests, fault injection); :meth:`register` refuses
        a second handler so that such a takeover is never accidental.

        Raises:
            ConfigurationError: ``model`` is not a job type of the catalogue.
        """
        registration = Registration(self.job_type_of(model), model, handler)
        self._handlers[(registration.job_type.queue, registration.job_type.name)] = registration

    def handler(self, model: type[PayloadT]) -> Callable[[Handler[PayloadT]], Handler[PayloadT]]:
        """Decorator form of :meth:`register`."""

        def decorate(func: Handler[PayloadT]) -> Handler[PayloadT]:
            self.register(model, func)
            return func

        return decorate

    def lookup(self, queue: str, name: str) -> Registration[Any] | None:
        """The registration for a job, ``None`` when no handler exists (yet).

        By name, because that is what a job from the store carries; its payload type is
        whatever the registration's ``model`` is, hence ``Any`` here.
        """
        return self._handlers.get((queue, name))

    def registered(self, queue: str) -> list[str]:
        """Job names of ``queue`` that have a handler."""
        return sorted(name for (q, name) in self._handlers if q == queue)

    def serve_with(self, queue: str, service: Service) -> None:
        """Run ``service`` in every process that works ``queue`` (while it does)."""
        self._services.setdefault(queue, []).append(service)

    def services(self, queue: str) -> list[Service]:
        """The services of ``queue``."""
        return list(self._services.get(queue, ()))
