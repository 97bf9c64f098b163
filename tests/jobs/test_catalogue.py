"""The queue table of jobs.md, and overrides from settings and the environment."""

from __future__ import annotations

import pytest

from ils.errors import ConfigurationError, UnknownQueueError
from ils.jobs.catalogue import RateLimit, Retention, build_catalogue
from ils.settings import QueueOverride, Settings

DAY = 86_400


def test_defaults_match_jobs_md() -> None:
    catalogue = build_catalogue(Settings())
    table = {
        key: (q.name, q.concurrency, q.rate_limit, q.attempts, q.lock_duration_ms)
        for key, q in catalogue.items()
    }
    assert table == {
        "email": ("emails", 5, RateLimit(100, 60_000), 3, 30_000),
        "pdf": ("pdfs", 3, RateLimit(20, 60_000), 3, 60_000),
        "notification": ("notifications", 10, RateLimit(6_000, 60_000), 3, 30_000),
        "ai": ("ai-processing", 2, RateLimit(10, 60_000), 2, 120_000),
        "oma": ("oma-processing", 2, None, 3, 60_000),
        "scheduled": ("scheduled-jobs", 1, None, 3, 120_000),
    }
    for key, q in catalogue.items():
        assert q.backoff_delay_ms == 5_000
        assert q.keep_failed == Retention(7 * DAY, 5_000)
        expected = Retention(7 * DAY, 100) if key == "scheduled" else Retention(DAY, 1_000)
        assert q.keep_completed == expected
    assert catalogue["email"].backoff_ms(1) == 5_000
    assert catalogue["email"].backoff_ms(3) == 20_000


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ILS_QUEUES__EMAIL__CONCURRENCY", "8")
    monkeypatch.setenv("ILS_QUEUES__PDF__RATE_LIMIT_MAX", "0")
    monkeypatch.setenv("ILS_QUEUES__AI__RATE_LIMIT_MAX", "30")
    monkeypatch.setenv("ILS_QUEUES__AI__KEEP_COMPLETED_COUNT", "10")
    catalogue = build_catalogue(Settings(_env_file=None))  # type: ignore[call-arg]
    assert catalogue["email"].concurrency == 8
    assert catalogue["email"].rate_limit == RateLimit(100, 60_000)
    assert catalogue["pdf"].rate_limit is None
    assert catalogue["ai"].rate_limit == RateLimit(30, 60_000)
    assert catalogue["ai"].keep_completed == Retention(DAY, 10)


def test_unknown_queue_in_settings_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="emails"):
        build_catalogue(Settings(queues={"emails": {"concurrency": 2}}))
    with pytest.raises(UnknownQueueError):
        build_catalogue(Settings())["sms"]


def test_bad_override_values_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(queues={"email": {"concurrency": 0}})
    with pytest.raises(ValidationError):
        Settings(queues={"email": {"concurency": 3}})


def test_a_dead_workers_jobs_are_looked_for_six_times_a_lock() -> None:
    """A killed worker's jobs come back soon after their lock runs out, not up to a
    whole lock later (bench/peers kill test: 62 s with a check once a lock). Only the
    lock decides whether a job is taken from its worker, so the lock stays as it is."""
    catalogue = build_catalogue(Settings())
    checks = {key: (q.lock_duration_ms, q.stalled_interval_ms) for key, q in catalogue.items()}
    assert checks == {
        "email": (30_000, 5_000),
        "pdf": (60_000, 10_000),
        "notification": (30_000, 5_000),
        "ai": (120_000, 20_000),
        "oma": (60_000, 10_000),
        "scheduled": (120_000, 20_000),
    }
    overridden = build_catalogue(
        Settings(
            queues={
                "email": QueueOverride(lock_duration_ms=12_000),
                "pdf": QueueOverride(lock_duration_ms=500),
                "ai": QueueOverride(lock_duration_ms=12_000, stalled_interval_ms=7_000),
            }
        )
    )
    assert overridden["email"].stalled_interval_ms == 2_000
    assert overridden["pdf"].stalled_interval_ms == 500  # never longer than the lock
    assert overridden["ai"].stalled_interval_ms == 7_000  # as set
