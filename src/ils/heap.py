"""Keep the garbage collector's full passes short in long-running processes.

A server or worker process imports a great deal at start-up (SQLAlchemy mappers,
FastAPI routes, pydantic models, templates) and keeps it all until it exits. CPython's
full (generation 2) collection walks every one of those objects each time, and in
``ils serve`` that walk stopped the event loop for 30-150 ms a few times a minute:
every request in flight waited for it (bench/orders.py's slowest orders lined up with
the collections). Moving what exists once start-up is done into the permanent
generation (:func:`gc.freeze`) leaves the collector only what was made since.
Only process entry points call this; a test run that created many apps would keep
each one forever.
"""

from __future__ import annotations

import gc


def freeze_start_up_heap() -> None:
    """Collect start-up garbage, then exempt everything left from future collections."""
    gc.collect()
    gc.freeze()
