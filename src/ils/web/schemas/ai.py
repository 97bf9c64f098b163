"""Bodies and responses of the AI API (``/api/ai``): results, jobs to run, chat."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator

from ils.domain.content import AIResultKind, MessageRole
from ils.jobs.payloads.ai import AiInsightType, MetricType, TimeRange
from ils.web.schemas.common import ChatText, Day, InputModel, Line100, OutputModel, RecordId


class AIResultOut(OutputModel):
    """One stored AI output: a briefing, a forecast, an anomaly or an insight set."""

    id: str
    kind: AIResultKind
    day: dt.date | None
    period: str | None
    payload: dict[str, Any]
    created_at: dt.datetime


class QueuedOut(OutputModel):
    """A job the request queued: follow it with ``GET /api/queue/jobs/{queue}/{id}``."""

    queue: str
    name: str
    job_id: str


class BriefingRun(InputModel):
    """Build the briefing of ``date`` (default: today) for some users or all managers."""

    date: Day | None = None
    user_ids: list[RecordId] | None = Field(default=None, max_length=500)


class ForecastRun(InputModel):
    """Forecast ``forecast_days`` ahead, for some products or all stocked ones."""

    forecast_days: int = Field(default=30, ge=1, le=365)
    product_ids: list[RecordId] | None = Field(default=None, max_length=5_000)


class AnomalyRun(InputModel):
    """Scan one metric at a grain for anomalies."""

    metric_type: MetricType
    time_range: TimeRange = "daily"


class InsightRun(InputModel):
    """Insights of one kind over ``period_start``..``period_end`` (local dates)."""

    insight_type: AiInsightType
    period_start: Day
    period_end: Day

    @model_validator(mode="after")
    def _ordered(self) -> InsightRun:
        if self.period_end < self.period_start:
            raise ValueError("period_end must not be before period_start")
        if (self.period_end - self.period_start).days > 366:
            raise ValueError("a period covers at most a year")
        return self


JobKind = Literal["daily-briefing", "demand-forecast", "anomaly-detection", "insight-generation"]


class ConversationCreate(InputModel):
    """A new chat; its title defaults to the first question's first line."""

    title: Line100 | None = None


class MessageCreate(InputModel):
    """A question in a chat."""

    content: ChatText


class MessageOut(OutputModel):
    """One chat message."""

    id: str
    role: MessageRole
    content: str
    created_at: dt.datetime


class ConversationOut(OutputModel):
    """A chat and (on its own page) its messages, oldest first."""

    id: str
    title: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    messages: list[MessageOut] = Field(default_factory=list)


class AskedOut(OutputModel):
    """The stored question and the job that will answer it."""

    message: MessageOut
    job: QueuedOut
