"""Settings of sign-in throttling and request limits (``ILS_SIGN_IN__...``, ``ILS_LIMITS__...``).

A module of its own, beside ``ils.settings``, so the limits are read next to their
defaults and the settings module stays small. ``ils.web.security`` turns
:class:`SignInSettings` into the throttle's rules; ``ils.web.limits`` applies
:class:`LimitSettings`. docs/platform.md ("Sign-in throttling and request limits")
explains the numbers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator


class SignInSettings(BaseModel):
    """Sign-in throttling, per account (the normalised e-mail, whether or not it has an
    account) and per client address.

    The first ``free_attempts`` failures cost nothing; each failure after them makes
    the next attempt wait ``base_delay_s`` doubled per failure (at most
    ``max_delay_s``); failure number ``lock_after`` locks for ``lock_duration_s``. An
    address is shared by whole offices behind one NAT, so its numbers are higher.
    """

    model_config = {"extra": "forbid"}

    free_attempts: int = Field(default=5, ge=0, le=1000)
    base_delay_s: float = Field(default=1.0, gt=0, le=3600)
    max_delay_s: float = Field(default=60.0, gt=0, le=86_400)
    lock_after: int = Field(default=10, ge=1, le=10_000)
    lock_duration_s: float = Field(default=900.0, gt=0, le=7 * 86_400)
    address_free_attempts: int = Field(default=20, ge=0, le=100_000)
    address_lock_after: int = Field(default=100, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _lock_after_the_free_ones(self) -> SignInSettings:
        if self.lock_after <= self.free_attempts:
            raise ValueError("lock_after must be greater than free_attempts")
        if self.address_lock_after <= self.address_free_attempts:
            raise ValueError("address_lock_after must be greater than address_free_attempts")
        return self


class LimitSettings(BaseModel):
    """Caps on what one session or user holds open in one web process, and how the
    process serves its connections.

    A new notification stream over ``streams_per_session`` (or ``streams_per_user``
    across the user's sessions) closes the oldest one; more than
    ``expensive_per_session`` long polls of one session at once answer 429 with
    ``Retry-After: retry_after_s``. An idle HTTP connection stays open ``keep_alive_s``
    for its client's next request: uvicorn's own 5 s made most requests of a person
    who reads for 5-15 s between clicks open a new connection (about 2 % of the
    server's event loop with 1,000 users, bench/users.py), and is shorter than the idle
    timeout of common load balancers (60 s), which then reuse a connection the server
    is closing and answer 502. nginx's default is 75 s.

    ``event_loop`` is the loop ``ils serve`` runs on: the standard library's by
    default. With 1,000 users on two cores (bench/users.py, the embedded default) it
    answered p99 128-149 ms with notifications p50 2-17 s late, where uvloop, which
    uvicorn picks by itself when installed, answered 209-357 ms and left 12-54 % of
    the notifications undelivered within the run (p50 25-49 s late): the jobs running
    in the server got less of the loop. ``uvloop`` remains a choice for a process that
    runs no workers, where it served more orders back to back (bench/orders.py); the
    figures are in docs/performance.md and docs/benchmarks.md.
    """

    model_config = {"extra": "forbid"}

    streams_per_session: int = Field(default=5, ge=1, le=1000)
    streams_per_user: int = Field(default=10, ge=1, le=10_000)
    expensive_per_session: int = Field(default=2, ge=1, le=1000)
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    keep_alive_s: int = Field(default=75, ge=1, le=3600)
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
