"""Request and response bodies of marketplace connections between companies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from ils.domain.companies import CompanyKind
from ils.domain.marketplace import ConnectionStatus
from ils.web.schemas.common import InputModel, Notes, OutputModel, RecordId


class Direction(StrEnum):
    """Whether the viewer's company asked (outgoing) or was asked (incoming)."""

    OUTGOING = "outgoing"
    INCOMING = "incoming"


class Decision(StrEnum):
    """The answer of the company asked (the last step of the decision's path)."""

    ACCEPT = "accept"
    REJECT = "reject"


class ConnectionCreate(InputModel):
    """Ask another company to connect."""

    target_id: RecordId = Field(description="The company asked.")
    message: Notes | None = Field(default=None, max_length=2000)


class CompanyRef(OutputModel):
    """The other company of a connection, as the marketplace shows it."""

    id: str
    name: str
    kind: CompanyKind


class ConnectionOut(OutputModel):
    """A connection as one of its two companies sees it."""

    id: str
    requester_id: str
    target_id: str
    direction: Direction
    other: CompanyRef = Field(description="The company on the other side.")
    status: ConnectionStatus
    message: str | None
    requested_by: str | None
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
