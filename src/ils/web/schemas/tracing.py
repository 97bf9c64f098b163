"""Responses of the tracing routes (``/api/orders/{id}/tracing``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ils.domain.content import TracingStatus
from ils.web.schemas.ai import QueuedOut
from ils.web.schemas.common import OutputModel


class UploadedFileOut(OutputModel):
    """A stored upload: its name, size and checksum (the bytes are not echoed)."""

    id: str
    order_id: str | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    created_at: dt.datetime


class UploadedOut(OutputModel):
    """The stored file and the ``process-oma-file`` job that will read it."""

    file: UploadedFileOut
    job: QueuedOut


class TracingOut(OutputModel):
    """What processing a tracing file found: measurements per eye (``R``, ``L``: boxing
    ``a_mm``, ``b_mm``, ``ed_mm``, ``circumference_mm``), findings (``severity``
    error/warning/info, ``code``, ``message``), the right lens's outline (mm around its
    boxing centre) and the parsed records (``[[label, [fields...]], ...]``)."""

    id: str
    order_id: str
    file_id: str
    status: TracingStatus
    measurements: dict[str, Any]
    findings: list[Any]
    outline: list[list[float]] | None
    document: list[Any] | None
    created_at: dt.datetime
