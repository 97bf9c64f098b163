"""Caps on what one session or user holds open in one web process (issue 23).

Why: one session opened 4,000 notification streams and the process grew by 130 MB
while every other request slowed to seconds. Two things are capped, both per process
(each web process guards its own memory and event loop; with N processes a user holds
at most N times the caps), counted in :mod:`ils.web.slots`:

* Live streams (``OpenStreams``, kept by the notification hub): at most
  ``ILS_LIMITS__STREAMS_PER_SESSION`` per session and ``ILS_LIMITS__STREAMS_PER_USER``
  per user. Opening one more closes the *oldest*, not the new one: a browser that
  reloads or opens a tab gets the stream it asks for, and the one it most likely left
  behind is the one that goes.
* Expensive requests (``RequestSlots``, used through the :data:`ExpensiveRequest`
  dependency): at most ``ILS_LIMITS__EXPENSIVE_PER_SESSION`` at once per session; one
  more answers 429 with ``Retry-After``. Refusing is right here (unlike streams): the
  client waits for this answer and can simply ask again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import Depends, HTTPException

from ils.web.deps import CurrentAuth, StateDep

#: The 429 of a session with too many expensive requests running.
TOO_BUSY: Final = "too many requests of this kind at once; wait for one to finish"


async def expensive_request(auth: CurrentAuth, state: StateDep) -> AsyncIterator[None]:
    """Hold one of the session's expensive-request slots while the handler runs; 429
    with ``Retry-After`` when none is free."""
    caps = state.settings.limits
    key = auth.session.id
    if not state.slots.try_enter(key, caps.expensive_per_session):
        raise HTTPException(429, TOO_BUSY, headers={"Retry-After": str(caps.retry_after_s)})
    try:
        yield
    finally:
        state.slots.leave(key)


#: Add ``_: ExpensiveRequest`` to a route's parameters to cap it per session. Function
#: scope: the slot is given back when the handler returns, not after the response.
ExpensiveRequest = Annotated[None, Depends(expensive_request, scope="function")]
