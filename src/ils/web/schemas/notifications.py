"""Bodies of the notification API (``/api/notifications``) and its live stream."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ils.domain.content import NotificationPriority
from ils.web.schemas.common import OutputModel


class NotificationOut(OutputModel):
    """One in-app notification of the signed-in user."""

    id: str = Field(description="Also the live stream's event id (for Last-Event-ID).")
    kind: str = Field(description="system, order, ai-insight or marketplace.")
    priority: NotificationPriority
    title: str
    message: str
    link: str | None = Field(description="A path in the app, or an http(s) URL.")
    created_at: datetime
    read_at: datetime | None
    read: bool


class UnreadCountOut(OutputModel):
    """How many of the user's notifications are unread."""

    unread: int


class MarkedOut(OutputModel):
    """How many notifications an operation changed."""

    marked: int
