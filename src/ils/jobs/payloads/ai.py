"""Payload models of the ``ai`` queue (Redis queue ``ai-processing``).

AI jobs name a company, a period and what to compute; the worker reads the
company's data itself. Periods are calendar dates (``YYYY-MM-DD``) in the company's
own time zone, so they stay plain ISO strings in the JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationInfo, field_validator

from ils.jobs.payloads.base import (
    ForecastDays,
    Identifier,
    IdentifierList,
    IsoDate,
    JobPayload,
    Message,
)

MetricType = Literal["revenue", "inventory", "orders", "patients"]
TimeRange = Literal["daily", "weekly", "monthly"]
AiInsightType = Literal["revenue", "inventory", "patient-care", "operations"]

DEFAULT_FORECAST_DAYS = 30


class DailyBriefingJob(JobPayload):
    """Generate a company's daily briefing for ``date``.

    ``user_ids`` limits who receives it; ``None`` means every user the company has
    subscribed to briefings.
    """

    type: Literal["daily-briefing"] = "daily-briefing"
    company_id: Identifier
    date: IsoDate
    user_ids: IdentifierList | None = None


class DemandForecast(JobPayload):
    """Forecast demand ``forecast_days`` ahead, for some products or (``None``) all."""

    type: Literal["demand-forecast"] = "demand-forecast"
    company_id: Identifier
    forecast_days: ForecastDays = DEFAULT_FORECAST_DAYS
    product_ids: IdentifierList | None = None


class AnomalyDetection(JobPayload):
    """Look for anomalies in one metric of a company over the last day, week or month."""

    type: Literal["anomaly-detection"] = "anomaly-detection"
    company_id: Identifier
    metric_type: MetricType
    time_range: TimeRange = "daily"


class InsightGeneration(JobPayload):
    """Generate insights of one kind over a closed period of calendar dates."""

    type: Literal["insight-generation"] = "insight-generation"
    company_id: Identifier
    insight_type: AiInsightType
    period_start: IsoDate
    period_end: IsoDate

    @field_validator("period_end")
    @classmethod
    def _end_not_before_start(cls, period_end: str, info: ValidationInfo) -> str:
        """An inverted period is a caller bug that would silently produce nothing.

        A field validator (not a model validator) so the problem is reported against
        ``periodEnd``. ISO dates compare correctly as strings. When ``periodStart``
        itself was invalid it is absent from ``info.data`` and only its own error is
        reported.
        """
        period_start = info.data.get("period_start")
        if isinstance(period_start, str) and period_end < period_start:
            raise ValueError("must not be before periodStart")
        return period_end


class ChatResponse(JobPayload):
    """Answer a user's chat message within a conversation of their company."""

    type: Literal["chat-response"] = "chat-response"
    user_id: Identifier
    company_id: Identifier
    conversation_id: Identifier
    message: Message
