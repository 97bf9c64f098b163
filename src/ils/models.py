"""Imports every module that defines tables, so ``Base.metadata`` is complete.

Alembic's environment and the migration check import this one module.
"""

from __future__ import annotations

import ils.queue.outbox
import ils.queue.stores.local_schema  # noqa: F401
