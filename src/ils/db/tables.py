"""Imports every module that defines tables, so ``Base.metadata`` is complete.

Alembic's environment and the migration check import this one module.
"""

from __future__ import annotations

import ils.domain.audit
import ils.domain.billing
import ils.domain.clinical
import ils.domain.companies
import ils.domain.content
import ils.domain.mail
import ils.domain.marketplace
import ils.domain.numbering
import ils.domain.orders
import ils.domain.sign_in_throttle
import ils.domain.supply
import ils.jobs.outbox
import ils.jobs.schedules.store
import ils.jobs.stores.local.schema  # noqa: F401
