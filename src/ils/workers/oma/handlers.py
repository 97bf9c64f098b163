"""The ``oma`` queue's handler: read an uploaded tracing file and attach it to the order.

1. Load the order and the file record (the file must be one uploaded for that order
   by one of its two companies) and the bytes from storage, checked against the
   SHA-256 recorded at upload (a damaged file is never measured).
2. Parse, decode the tracing of each eye, measure, and check against what the file
   declares and what the order says (frame sizes, prescription).
3. Store the result on the order in one transaction: an ``order_tracings`` row, the
   right lens's outline in ``orders.frame_outline`` (the lab work ticket draws it,
   and is queued again to do so), and a notification to whoever uploaded the file.
   A tracing whose checks find errors is stored with its findings but does not
   replace the order's shape (a rejected shape must never reach the bench); the
   notification says why.

A file that cannot be read fails the job at once (retrying a bad file never helps)
with a reason a lab technician understands, after storing that reason as the order's
tracing result so the web app can show it. Messages and logs name lines and record
labels, never values: a tracing file may carry the prescription.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import utc_now
from ils.domain.content import OrderTracing, TracingStatus, UploadedFile
from ils.domain.orders import Order
from ils.errors import PermanentJobError
from ils.jobs.job_types import ProcessOmaFile
from ils.jobs.producer import COMPANY_INFO_KEY
from ils.jobs.registry import JobContext
from ils.jobs.worker_context import WorkerContext
from ils.storage import FileStorage
from ils.storage.backends import open_storages
from ils.workers.oma.checks import Finding, OrderFrame, OrderRx, check, status
from ils.workers.oma.companions import check_companions, drill_holes
from ils.workers.oma.measure import Measurements, measure_set, ticket_outline
from ils.workers.oma.records import Eye, OmaDocument, OmaError, parse
from ils.workers.oma.rx import prism_component
from ils.workers.oma.tracing import tracings


class OmaDataError(PermanentJobError):
    """The job names an order or file that does not exist, or do not belong together."""


def _mm(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def order_frame(order: Order) -> OrderFrame:
    """The order's frame data as the checks compare it."""
    return OrderFrame(
        box_a=_mm(order.frame_box_a),
        box_b=_mm(order.frame_box_b),
        ed=_mm(order.frame_ed),
        dbl=_mm(order.frame_dbl),
    )


def order_rx(order: Order) -> dict[str, OrderRx]:
    """The order's prescription and centration per eye (``R``, ``L``); a compound
    prism's two components summed into base-in and base-up parts."""
    found: dict[str, OrderRx] = {}
    for eye, name in (("R", "right"), ("L", "left")):
        components = [
            prism_component(_mm(getattr(order, f"{name}_prism")), _base(order, f"{name}_prism")),
            prism_component(
                _mm(getattr(order, f"{name}_prism_vertical")),
                _base(order, f"{name}_prism_vertical"),
            ),
        ]
        prism_in = sum(c[0] for c in components)
        prism_up = sum(c[1] for c in components)
        found[eye] = OrderRx(
            _mm(getattr(order, f"{name}_sphere")),
            _mm(getattr(order, f"{name}_cylinder")),
            getattr(order, f"{name}_axis"),
            add=_mm(getattr(order, f"{name}_add")),
            prism_in=prism_in,
            prism_up=prism_up,
            pd=_mm(getattr(order, f"pd_{name}")),
            height=_mm(getattr(order, f"seg_height_{name}")),
        )
    return found


def _base(order: Order, column: str) -> str | None:
    base = getattr(order, f"{column}_base")
    return None if base is None else str(base.value)


def _finding_json(finding: Finding) -> dict[str, str]:
    return {"severity": finding.severity, "code": finding.code, "message": finding.message}


@dataclass(frozen=True, slots=True)
class Processed:
    """What reading one file gave: the parsed records, per-eye results, findings, and
    the outline the lab work ticket draws (``None`` without a readable tracing)."""

    doc: OmaDocument
    measured: dict[Eye, Measurements]
    findings: list[Finding]
    outline: list[list[float]] | None


def process(data: bytes, order: Order) -> Processed:
    """Parse, decode, measure and check ``data`` against ``order`` (pure; raises
    :class:`OmaError` for a file that cannot be read)."""
    doc = parse(data)
    traced = tracings(doc)
    # A dataset that does not read (truncated, wrong counts) fails the file: measuring
    # the other eye alone would hide that the file needs sending again.
    traced.raise_if_errors()
    measured = measure_set(traced)
    findings = check(
        doc,
        traced,
        measured,
        order_frame(order),
        order_rx(order),
        binocular_pd=_mm(order.pd_binocular),
    )
    findings += check_companions(doc, traced, measured)
    return Processed(doc, measured, findings, ticket_outline(traced))


def _row(
    payload: ProcessOmaFile,
    ctx: JobContext,
    row_status: TracingStatus,
    findings: list[dict[str, str]],
    *,
    document: list[Any] | None = None,
    measurements: dict[str, Any] | None = None,
    outline: list[list[float]] | None = None,
) -> OrderTracing:
    """The ``order_tracings`` row of this job (stored by :meth:`OmaWorker._store`)."""
    return OrderTracing(
        order_id=payload.order_id,
        file_id=payload.file_id,
        status=row_status,
        document=document,
        measurements=measurements or {},
        findings=findings,
        outline=outline,
        job_id=ctx.job_id,
    )


class OmaWorker:
    """The handler of ``process-oma-file`` for one process."""

    def __init__(self, context: WorkerContext, storage: FileStorage | None = None) -> None:
        self.context = context
        self.db = context.db
        self.storage = storage or open_storages(context.settings).uploads

    async def process_file(self, payload: ProcessOmaFile, ctx: JobContext) -> dict[str, Any]:
        """Read, check and attach the file; fails for good on an unreadable file."""
        async with self.db.read() as session:
            order, upload = await self._load(session, payload)
            path, sha256 = upload.path, upload.sha256
            uploader = (upload.uploaded_by, upload.company_id)
        data = await self.storage.get(path, sha256=sha256)
        try:
            result = process(data, order)
        except OmaError as error:
            unreadable = [{"severity": "error", "code": "unreadable", "message": str(error)}]
            await self._store(_row(payload, ctx, TracingStatus.UNREADABLE, unreadable), uploader)
            await ctx.log(f"file {payload.file_id} unreadable: {error}")
            raise
        row_status = TracingStatus(status(result.findings))
        row = _row(
            payload,
            ctx,
            row_status,
            [_finding_json(f) for f in result.findings],
            document=[[r.label, list(r.fields)] for r in result.doc.records],
            measurements=_measurements(result),
            outline=result.outline,
        )
        tracing_id = await self._store(row, uploader)
        if tracing_id is None:
            raise OmaDataError(f"order {payload.order_id} not found")
        counts = {s: sum(f.severity == s for f in result.findings) for s in ("error", "warning")}
        await ctx.log(
            f"file {payload.file_id}: {row_status.value}, eyes {sorted(result.measured)}, "
            f"{counts['error']} errors, {counts['warning']} warnings"
        )
        return {
            "tracingId": tracing_id,
            "status": row_status.value,
            "eyes": sorted(result.measured),
            "errors": counts["error"],
            "warnings": counts["warning"],
        }

    async def _load(
        self, session: AsyncSession, payload: ProcessOmaFile
    ) -> tuple[Order, UploadedFile]:
        order = await session.get(Order, payload.order_id)
        upload = await session.get(UploadedFile, payload.file_id)
        if order is None or upload is None:
            raise OmaDataError(f"order {payload.order_id} or file {payload.file_id} not found")
        if upload.order_id != order.id or upload.company_id not in (order.company_id, order.lab_id):
            raise OmaDataError(f"file {payload.file_id} was not uploaded for order {order.id}")
        return order, upload

    async def _store(self, row: OrderTracing, uploader: tuple[str | None, str]) -> str | None:
        """Store ``row`` once per job: the outline goes on the order (and its ticket is
        drawn again), the uploader is told. The id of the row this job stored, ``None``
        when the order is gone."""
        async with self.db.write() as session:
            existing = await session.scalar(
                select(OrderTracing.id).where(OrderTracing.job_id == row.job_id)
            )
            if existing is not None:
                return str(existing)  # an earlier attempt committed everything
            order = await session.get(Order, row.order_id)
            if order is None:
                return None
            row.created_at = utc_now(self.context.clock)
            session.add(row)
            # A tracing with errors is kept for the record but never becomes the
            # order's shape: the order (and its ticket) keep the previous one.
            if row.outline is not None and row.status is not TracingStatus.ERRORS:
                order.frame_outline = row.outline
                session.info[COMPANY_INFO_KEY] = order.lab_id
                await self.context.helpers.queue_lab_work_ticket_pdf(order.id, session=session)
            await self._tell_uploader(session, uploader, order, row.status, row.findings)
            await session.flush()
            return row.id

    async def _tell_uploader(
        self,
        session: AsyncSession,
        uploader: tuple[str | None, str],
        order: Order,
        row_status: TracingStatus,
        findings: list[dict[str, str]],
    ) -> None:
        user_id, company_id = uploader
        if user_id is None:
            return
        # The notification is the uploader's company's job (the monitoring API's scope).
        session.info[COMPANY_INFO_KEY] = company_id
        titles = {
            TracingStatus.OK: "Tracing checked: no problems",
            TracingStatus.WARNINGS: "Tracing checked: warnings",
            TracingStatus.ERRORS: "Tracing checked: errors to correct",
            TracingStatus.UNREADABLE: "Tracing file could not be read",
        }
        count = len(findings)
        body = (
            f"The tracing file of order {order.number} was processed: "
            f"{row_status.value}, {count} finding{'s' if count != 1 else ''}."
        )
        if row_status in (TracingStatus.ERRORS, TracingStatus.UNREADABLE):
            # Prescription findings carry powers: the notification names them only.
            errors = [
                "the prescription differs from the order's"
                if f["code"].startswith("rx_")
                else f["message"]
                for f in findings
                if f["severity"] == "error"
            ]
            body += " The order keeps its previous shape. Why: " + "; ".join(errors[:3])
        await self.context.helpers.queue_system_notification(
            user_id,
            f"{titles[row_status]} ({order.number})",
            body,
            "high" if row_status in (TracingStatus.ERRORS, TracingStatus.UNREADABLE) else "low",
            f"/orders/{order.id}",
            session=session,
        )


def _measurements(result: Processed) -> dict[str, Any]:
    """What the row keeps of the measurements: each eye's (``R``, ``L``) and, when the
    file has drill records, ``holes`` (eye, x, y, diameter in mm, as the file gives
    them): the lab ticket draws them from here, without reading the file again."""
    kept: dict[str, Any] = {eye: m.as_dict() for eye, m in result.measured.items()}
    holes, _ = drill_holes(result.doc)
    if holes:
        kept["holes"] = [
            {"eye": h.eye, "x_mm": h.x_mm, "y_mm": h.y_mm, "diameter_mm": h.diameter_mm}
            for h in holes
        ]
    return kept
