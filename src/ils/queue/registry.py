"""Handlers keyed by (queue, job name), with the payload model of their job type.

A handler is a plain async function ``handler(payload, ctx) -> result``: it receives
the validated pydantic payload and a :class:`JobContext` for progress and log lines,
and returns something JSON-able (stored as the job's result).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ils.queue.jobtypes import JobType, JobTypes, validate_payload


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

    async def log(self, line: str) -> None:
        """Append a log line to the job (no patient data)."""
        ...


Handler = Callable[[Any, JobContext], Awaitable[Any]]
PayloadT = TypeVar("PayloadT", bound=BaseModel)


def payload_as(payload: BaseModel, kind: type[PayloadT]) -> PayloadT:
    """``payload`` as the model ``kind`` its handler was registered for.

    A handler receives what the registry validated with its job type's model, so a
    mismatch is a wiring bug (a handler registered under the wrong job name): it fails
    the job loudly instead of reading the wrong fields.
    """
    if not isinstance(payload, kind):
        raise TypeError(f"expected {kind.__name__}, not {type(payload).__name__}")
    return payload


#: Work a process does while it serves a queue, besides its jobs (the schedule
#: claimers of the ``scheduled`` queue): runs until the event is set.
Service = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Registration:
    """A handler bound to its job type."""

    job_type: JobType
    handler: Handler

    def parse(self, data: dict[str, Any]) -> BaseModel:
        """Validate a received payload again, as the worker must."""
        return validate_payload(self.job_type, data)


class HandlerRegistry:
    """The handlers one worker process knows, by (queue, job name)."""

    def __init__(self, job_types: JobTypes) -> None:
        self.job_types = job_types
        self._handlers: dict[tuple[str, str], Registration] = {}
        self._services: dict[str, list[Service]] = {}

    def register(self, queue: str, name: str, handler: Handler) -> None:
        """Bind ``handler`` to a job type of the catalogue (unknown types raise)."""
        job_type = self.job_types.get(queue, name)
        self._handlers[(queue, name)] = Registration(job_type, handler)

    def handler(self, queue: str, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(func: Handler) -> Handler:
            self.register(queue, name, func)
            return func

        return decorate

    def lookup(self, queue: str, name: str) -> Registration | None:
        """The registration for a job, ``None`` when no handler exists (yet)."""
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
