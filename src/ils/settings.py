"""Typed settings, read once at a composition root and passed down.

Environment variables use the ``ILS_`` prefix; nested values use ``__``, for example
``ILS_QUEUES__EMAIL__CONCURRENCY=8`` overrides the e-mail queue's concurrency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class QueueOverride(BaseModel):
    """Per-queue overrides of the catalogue defaults in ``queue.catalogue``.

    Every field is optional; a missing one keeps the catalogue's value. A rate limit is
    switched off with ``rate_limit_max=0``.
    """

    model_config = {"extra": "forbid"}

    concurrency: int | None = Field(default=None, ge=1, le=1000)
    rate_limit_max: int | None = Field(default=None, ge=0)
    rate_limit_duration_ms: int | None = Field(default=None, ge=1)
    attempts: int | None = Field(default=None, ge=1, le=100)
    backoff_delay_ms: int | None = Field(default=None, ge=0)
    lock_duration_ms: int | None = Field(default=None, ge=100)
    stalled_interval_ms: int | None = Field(default=None, ge=100)
    keep_completed_age_s: int | None = Field(default=None, ge=0)
    keep_completed_count: int | None = Field(default=None, ge=0)
    keep_failed_age_s: int | None = Field(default=None, ge=0)
    keep_failed_count: int | None = Field(default=None, ge=0)


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file under the data directory."""
    return f"sqlite+aiosqlite:///{data_dir / 'ils.db'}"


class Settings(BaseSettings):
    """Everything ILS can be told from outside."""

    model_config = SettingsConfigDict(
        env_prefix="ILS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "bull"
    redis_require_noeviction: bool = False
    # An enqueue must never hold up a request: past this, the job goes to the local store.
    redis_enqueue_timeout_ms: int = Field(default=25, ge=1)
    redis_connect_timeout_ms: int = Field(default=500, ge=1)
    # How often a degraded process probes Redis to switch back.
    redis_probe_interval_s: float = Field(default=1.0, gt=0)
    queues: dict[str, QueueOverride] = Field(default_factory=dict)
    local_poll_interval_ms: int = Field(default=100, ge=5)
    max_stalled_count: int = Field(default=1, ge=0)
    max_payload_bytes: int = Field(default=64 * 1024, ge=256)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    outbox_sweep_interval_s: float = Field(default=2.0, gt=0)
    log_level: str = "INFO"

    @field_validator("redis_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file under ``data_dir``."""
        return self.database_url or default_database_url(self.data_dir)

    @property
    def redis_configured(self) -> bool:
        """Redis mode is chosen by setting ``ILS_REDIS_URL``; unset means local mode."""
        return self.redis_url is not None


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and ``.env``), with explicit overrides on top."""
    return Settings(**overrides)
