"""What the lab work ticket says about the order's tracing files.

The ticket draws ``orders.frame_outline``, which only a tracing without errors sets
(see ``ils.workers.oma.handlers``). This module adds what the bench must also know:

* the newest tracing was rejected (errors) or could not be read: the ticket says so,
  rather than "no tracing attached", and says which shape it draws instead;
* the warnings of the tracing whose shape is drawn (look before edging);
* its drill holes (``DRILLE``), drawn on the shape with their positions.

Holes come from the row's ``measurements["holes"]``, stored by the OMA worker (this
worker never parses tracing files: a worker does not import another). Positions are
turned into the right lens's frame of the outline (x towards the nose): a left lens's
hole is mirrored, as the ticket mirrors the right lens's outline to draw the left one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.content import OrderTracing, TracingStatus
from ils.domain.tracing_queries import tracing_history
from ils.workers.pdf.data import DrawnHole

#: How many warnings the ticket lists (the rest are in the app).
WARNINGS_SHOWN: Final = 4
SHAPES: Final = frozenset({TracingStatus.OK, TracingStatus.WARNINGS})


@dataclass(frozen=True, slots=True)
class TicketTracing:
    """The tracing facts a ticket prints: a note when the newest file was refused,
    the drawn tracing's warnings and drill holes."""

    note: str | None = None
    warnings: tuple[str, ...] = ()
    holes: tuple[DrawnHole, ...] = ()


async def ticket_tracing(session: AsyncSession, order_id: str) -> TicketTracing:
    """The ticket's tracing facts for an order (already scoped by the caller)."""
    rows = await tracing_history(session, order_id)
    if not rows:
        return TicketTracing()
    newest = rows[0]
    drawn = next((row for row in rows if row.status in SHAPES and row.outline), None)
    note = None
    if newest.status not in SHAPES:
        what = "unreadable" if newest.status is TracingStatus.UNREADABLE else "rejected"
        instead = "previous tracing drawn" if drawn is not None else "boxed size drawn"
        note = f"tracing {what}: {_first_error(newest)}; {instead}"
    if drawn is None:
        return TicketTracing(note)
    warnings = tuple(
        str(f.get("message", "")) for f in drawn.findings if f.get("severity") == "warning"
    )
    return TicketTracing(note, warnings[:WARNINGS_SHOWN], _holes(drawn))


def _first_error(row: OrderTracing) -> str:
    for finding in row.findings:
        if finding.get("severity") == "error":
            code = str(finding.get("code", "error"))
            if row.status is TracingStatus.UNREADABLE:
                return str(finding.get("message", code))  # names lines, never values
            # Prescription findings carry powers; the ticket prints the Rx already.
            return "prescription differs" if code.startswith("rx_") else code.replace("_", " ")
    return "errors"


def _holes(row: OrderTracing) -> tuple[DrawnHole, ...]:
    """The drill holes the OMA worker stored with the tracing (``measurements["holes"]``;
    the left lens's x mirrored for drawing). Read from the row, so this worker never
    parses tracing files (a worker does not import another)."""
    stored: list[Any] = (row.measurements or {}).get("holes") or []
    holes = []
    for hole in stored:
        eye = str(hole["eye"])
        x = float(hole["x_mm"])
        holes.append(
            DrawnHole(eye, x if eye == "R" else -x, float(hole["y_mm"]), float(hole["diameter_mm"]))
        )
    return tuple(holes)
