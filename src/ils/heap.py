"""Keep the garbage collector's full passes short and rare in long-running processes.

A server or worker process imports a great deal at start-up (SQLAlchemy mappers,
FastAPI routes, pydantic models, templates) and keeps it all until it exits. CPython's
full (generation 2) collection walks every one of those objects each time, and in
``ils serve`` that walk stopped the event loop for 30-150 ms a few times a minute:
every request in flight waited for it (bench/orders.py's slowest orders lined up with
the collections). Moving what exists once start-up is done into the permanent
generation (:func:`gc.freeze`) leaves the collector only what was made since.

That was not enough with many users. With 1,000 signed in (``bench/users.py``) the
server holds about 300,000 objects made after start-up (sessions, streams, their
tasks and buffers), and a full pass over them took 200 ms, every 3 s: a stall that
was most of the API's p99 and left the notification queue behind. The passes came
that often because CPython's young generation is collected every 700 net new
objects: a request or a stream fan-out has thousands alive at once, so each one was
collected twice while still in use, promoted to the old generation, and counted
towards the next full pass, then freed by reference counting a moment later. A young
threshold of 50,000 lets them die before they are ever collected; in the same run
there was one full pass in the whole window. Objects of such bursts do not form
cycles worth chasing sooner: memory stayed within 5 % of before.

Only process entry points call this; a test run that created many apps would keep
each one forever.
"""

from __future__ import annotations

import gc
from typing import Final

#: Net new container objects between young collections (CPython's default: 700).
YOUNG_THRESHOLD: Final = 50_000
#: Young collections between middle ones (default 10), and middle between full (10).
MIDDLE_THRESHOLD: Final = 20
OLD_THRESHOLD: Final = 10


def tune_garbage_collector() -> None:
    """Collect start-up garbage, exempt everything left from future collections, and
    collect the young generation rarely enough that short-lived objects are never
    promoted."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
