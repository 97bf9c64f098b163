"""The AI worker: forecasts, anomalies, insights, daily briefings and chat answers.

Everything is computed from the company's own data with statistics (statsmodels and
numpy); a language model, when one is configured, only phrases chat answers from the
facts the worker retrieved. Modules, one concern each:

* ``facts`` (one company-scoped query per figure), ``series`` (metrics per local day,
  week or month), ``stored`` (reading earlier results back);
* ``arrays`` (the numeric series both statistics parts take, and its check);
* ``forecast`` and ``demand_methods`` (demand classes, Holt-Winters, Croston/SBA/TSB,
  intervals, reorder suggestions), ``demand`` (the forecast job's reading, batches
  for the CPU pool, and stored shape);
* ``anomaly`` (robust seasonal baseline and scores), ``zero_runs`` (runs of zero
  activity on trading days, which the baseline absorbs), ``anomaly_scan`` (which
  periods a run reads and reports);
* ``insights`` and ``briefing`` (findings and the morning briefing, in sentences
  with their numbers);
* ``chat`` with ``chat_questions``, ``chat_periods``, ``chat_orders``,
  ``chat_answers`` and ``chat_trade`` (rules that understand a question and answer it
  from facts; ``chat_trade`` for invoices, customers and lens mix),
  ``language_model`` (the optional OpenAI-compatible endpoint);
* ``results`` (company checks, idempotent storing, notifying managers),
  ``bad_input`` (days out of range and overflows fail a job at once) and
  ``handlers`` (the five jobs).
"""

from __future__ import annotations

from typing import Final

from ils.jobs.payloads.ai import (
    AnomalyDetection,
    ChatResponse,
    DailyBriefingJob,
    DemandForecast,
    InsightGeneration,
)
from ils.jobs.registry import HandlerRegistry
from ils.jobs.worker_context import WorkerContext
from ils.workers.ai.demand import warm_up
from ils.workers.ai.handlers import CHAT_CHANNEL, AIWorker, InlineOffload, Offload
from ils.workers.ai.language_model import LanguageModel, OpenAICompatibleModel
from ils.workers.cpu import CpuPool

QUEUE: Final = "ai"

__all__ = ["CHAT_CHANNEL", "QUEUE", "AIWorker", "InlineOffload", "register"]


def register(
    registry: HandlerRegistry,
    context: WorkerContext,
    *,
    offload: Offload | None = None,
    language_model: LanguageModel | None = None,
) -> AIWorker:
    """Register the five AI handlers.

    Forecasts are fitted in a CPU pool that starts with the first forecast and stops
    when the job system closes; the language model is the configured
    OpenAI-compatible endpoint, if any. Tests pass their own of either.
    """
    settings = context.settings.ai
    pool: CpuPool | None = None
    if offload is None:
        pool = CpuPool(
            settings.pool_size,
            timeout_s=settings.compute_timeout_s,
            warm_up=warm_up,
            what="forecasting",
        )
    # Only what is made here is closed here; the caller closes what it passed in.
    own_model = None if language_model else OpenAICompatibleModel.from_settings(settings)
    worker = AIWorker(context, offload or pool or InlineOffload(), language_model or own_model)

    async def close() -> None:
        if pool is not None:
            pool.close()
        if own_model is not None:
            await own_model.close()

    context.on_close(close)
    registry.register(DailyBriefingJob, worker.daily_briefing)
    registry.register(DemandForecast, worker.demand_forecast)
    registry.register(AnomalyDetection, worker.anomaly_detection)
    registry.register(InsightGeneration, worker.insight_generation)
    registry.register(ChatResponse, worker.chat_response)
    return worker
