"""The six queues of jobs.md and their options, every number overridable from settings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from ils.errors import ConfigurationError, UnknownQueueError
from ils.settings import QueueOverride, Settings

DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``max`` jobs started per ``duration_ms`` window, across all processes."""

    max: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Retention:
    """How long and how many finished jobs are kept (by age and by count)."""

    age_s: int
    count: int


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One queue's options. ``key`` is ours; ``name`` is the Redis/BullMQ queue name."""

    key: str
    name: str
    description: str
    concurrency: int
    rate_limit: RateLimit | None
    attempts: int
    backoff_delay_ms: int
    lock_duration_ms: int
    stalled_interval_ms: int
    keep_completed: Retention
    keep_failed: Retention
    #: A waiting job older than this is a health problem (the queue is falling behind).
    max_wait_s: int = 300

    def backoff_ms(self, attempts_made: int, base_ms: int | None = None) -> int:
        """Exponential back-off before retry number ``attempts_made`` (1-based).

        The same formula as BullMQ's ``exponential`` strategy: ``base * 2**(n-1)``.
        """
        base = self.backoff_delay_ms if base_ms is None else base_ms
        return int(base * 2 ** max(attempts_made - 1, 0))


def stalled_check_ms(lock_ms: int) -> int:
    """How often a queue looks for jobs whose worker died: a sixth of the lock (5 s for
    a 30 s lock), at least every second.

    Whether a job is taken from its worker rests on its lock alone: BullMQ's check and
    the local store's move back only a job whose lock is gone, so checking more often
    never takes a job from a live worker. Checking once a lock, as BullMQ's defaults
    do, brought a killed worker's jobs back up to a whole lock later than their lock
    ran out (bench/peers kill test: 62 s for ILS, 69 s for bullmq).
    """
    return max(min(lock_ms, 1_000), lock_ms // 6)


_DEFAULT_COMPLETED = Retention(age_s=DAY_S, count=1_000)
_DEFAULT_FAILED = Retention(age_s=7 * DAY_S, count=5_000)


def _queue(
    key: str,
    name: str,
    description: str,
    concurrency: int,
    rate_limit: RateLimit | None,
    attempts: int,
    lock_s: int,
    keep_completed: Retention = _DEFAULT_COMPLETED,
    max_wait_s: int = 300,
) -> QueueConfig:
    return QueueConfig(
        key=key,
        name=name,
        description=description,
        concurrency=concurrency,
        rate_limit=rate_limit,
        attempts=attempts,
        backoff_delay_ms=5_000,
        lock_duration_ms=lock_s * 1000,
        stalled_interval_ms=stalled_check_ms(lock_s * 1000),
        keep_completed=keep_completed,
        keep_failed=_DEFAULT_FAILED,
        max_wait_s=max_wait_s,
    )


DEFAULT_QUEUES: tuple[QueueConfig, ...] = (
    _queue(
        "email",
        "emails",
        "Order confirmations, shipment notices, purchase orders to suppliers, marketplace, "
        "general notification and daily briefing e-mails",
        5,
        RateLimit(100, 60_000),
        3,
        30,
    ),
    _queue(
        "pdf",
        "pdfs",
        "Order sheets, invoices, receipts, lab work tickets and examination forms",
        3,
        RateLimit(20, 60_000),
        3,
        60,
    ),
    _queue(
        "notification",
        "notifications",
        "In-app notifications: system, order, AI insight and marketplace",
        10,
        # 100 a second: an in-app notification calls no outside provider, so a low
        # platform-wide limit only delays it (200 a minute made them 55 s late with
        # 100 users, issue 21). ILS_QUEUES__NOTIFICATION__RATE_LIMIT_MAX overrides it.
        RateLimit(6_000, 60_000),
        3,
        30,
    ),
    _queue(
        "ai",
        "ai-processing",
        "Daily briefings, demand forecasts, anomaly detection, insights and chat answers",
        2,
        RateLimit(10, 60_000),
        2,
        120,
        max_wait_s=900,
    ),
    _queue(
        "oma",
        "oma-processing",
        "OMA / VCA lens-tracing files: parse, validate, measure, attach to the order",
        2,
        None,
        3,
        60,
    ),
    _queue(
        "scheduled",
        "scheduled-jobs",
        "Cron-driven work: daily briefings, nightly anomaly runs, weekly forecasts, clean-up",
        1,
        None,
        3,
        120,
        keep_completed=Retention(age_s=7 * DAY_S, count=100),
    ),
)


def _apply(config: QueueConfig, override: QueueOverride) -> QueueConfig:
    rate_limit = config.rate_limit
    if override.rate_limit_max is not None or override.rate_limit_duration_ms is not None:
        if override.rate_limit_max == 0:
            rate_limit = None
        else:
            max_jobs = override.rate_limit_max or (rate_limit.max if rate_limit else None)
            duration = override.rate_limit_duration_ms or (
                rate_limit.duration_ms if rate_limit else 1_000
            )
            if max_jobs is None:
                raise ConfigurationError(
                    f"queue {config.key!r}: a rate limit duration needs rate_limit_max"
                )
            rate_limit = RateLimit(max_jobs, duration)
    lock = override.lock_duration_ms or config.lock_duration_ms
    return replace(
        config,
        concurrency=override.concurrency or config.concurrency,
        rate_limit=rate_limit,
        attempts=override.attempts or config.attempts,
        backoff_delay_ms=(
            config.backoff_delay_ms
            if override.backoff_delay_ms is None
            else override.backoff_delay_ms
        ),
        lock_duration_ms=lock,
        stalled_interval_ms=override.stalled_interval_ms
        or (stalled_check_ms(lock) if override.lock_duration_ms else config.stalled_interval_ms),
        keep_completed=Retention(
            _pick(override.keep_completed_age_s, config.keep_completed.age_s),
            _pick(override.keep_completed_count, config.keep_completed.count),
        ),
        keep_failed=Retention(
            _pick(override.keep_failed_age_s, config.keep_failed.age_s),
            _pick(override.keep_failed_count, config.keep_failed.count),
        ),
        max_wait_s=_pick(override.max_wait_s, config.max_wait_s),
    )


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


class Catalogue(Mapping[str, QueueConfig]):
    """The queues by key, in the order of jobs.md."""

    def __init__(self, queues: tuple[QueueConfig, ...]) -> None:
        self._by_key = {q.key: q for q in queues}

    def __getitem__(self, key: str) -> QueueConfig:
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownQueueError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def by_name(self, redis_name: str) -> QueueConfig:
        """The queue whose Redis name is ``redis_name``."""
        for config in self._by_key.values():
            if config.name == redis_name:
                return config
        raise UnknownQueueError(redis_name)

    def select(self, keys: list[str]) -> list[QueueConfig]:
        """The queues named by ``keys`` (all of them when empty); unknown keys raise."""
        return [self[k] for k in keys] if keys else list(self._by_key.values())


def build_catalogue(settings: Settings) -> Catalogue:
    """The default queues with the per-queue overrides from settings applied."""
    known = {q.key for q in DEFAULT_QUEUES}
    unknown = sorted(set(settings.queues) - known)
    if unknown:
        raise ConfigurationError(f"settings override unknown queues: {', '.join(unknown)}")
    return Catalogue(
        tuple(
            _apply(q, settings.queues[q.key]) if q.key in settings.queues else q
            for q in DEFAULT_QUEUES
        )
    )
