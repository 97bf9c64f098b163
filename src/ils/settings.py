"""Typed settings, read once at a composition root and passed down.

Environment variables use the ``ILS_`` prefix; nested values use ``__``, for example
``ILS_QUEUES__EMAIL__CONCURRENCY=8`` overrides the e-mail queue's concurrency.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ils.fairness_settings import FairnessSettings
from ils.limit_settings import LimitSettings, SignInSettings
from ils.redis_settings import RedisConnection, redis_connection_of
from ils.secret_key import resolve_secret_keys
from ils.storage_settings import StorageSettings


class QueueOverride(BaseModel):
    """Per-queue overrides of the catalogue defaults in ``ils.jobs.catalogue``.

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
    max_wait_s: int | None = Field(default=None, ge=1)


#: How the SMTP connection is protected: ``tls`` from the first byte (port 465),
#: ``starttls`` upgraded after the greeting (port 587), ``none`` for a local relay.
SmtpSecurity = Literal["none", "starttls", "tls"]

#: The usual port of each security mode, used when ``port`` is not set.
SMTP_DEFAULT_PORTS: dict[str, int] = {"none": 25, "starttls": 587, "tls": 465}


class SmtpSettings(BaseModel):
    """Where the e-mail worker sends (``ILS_SMTP__HOST``, ``ILS_SMTP__PORT``, ...).

    Without a host nothing leaves the machine: the worker writes each message as an
    ``.eml`` file under ``data_dir/mail`` instead, so the embedded default and
    ``ils demo`` work offline and a person can open what would have been sent.
    """

    model_config = {"extra": "forbid"}

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: SmtpSecurity = "starttls"
    # Certificates are checked unless told otherwise (a relay with a self-signed one).
    validate_certs: bool = True
    # Seconds for connecting and for each SMTP command.
    timeout_s: float = Field(default=30.0, gt=0)
    from_address: str = "no-reply@localhost"
    from_name: str = "ILS"
    # The right-hand side of Message-IDs; the domain of ``from_address`` when unset.
    message_id_domain: str | None = None
    # A pooled connection idle longer than this is checked with NOOP before reuse
    # (servers drop idle clients after a few minutes; RFC 5321 suggests 5).
    idle_check_s: float = Field(default=30.0, ge=0)
    # Some servers refuse more than ~100 messages on one connection: reconnect then.
    max_messages_per_connection: int = Field(default=100, ge=1)
    # Connections kept per process; the e-mail queue's concurrency when unset.
    pool_size: int | None = Field(default=None, ge=1, le=100)

    @field_validator("host", "username")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def configured(self) -> bool:
        """Whether mail goes to a real server (else to ``.eml`` files)."""
        return self.host is not None

    @property
    def effective_port(self) -> int:
        """The configured port, or the usual one of the security mode."""
        return self.port or SMTP_DEFAULT_PORTS[self.security]


class PdfSettings(BaseModel):
    """The PDF worker (``ILS_PDF__POOL_SIZE``, ``ILS_PDF__DOCUMENTS_DIR``, ...).

    Rendering is CPU work done in worker processes, so a slow document never holds up
    the event loop (lock renewal, other queues). The pool starts with the first
    document, not with the process.
    """

    model_config = {"extra": "forbid"}

    # Render processes; ``min(CPUs, the pdf queue's concurrency)`` when unset, since
    # more processes than running jobs would only sit idle.
    pool_size: int | None = Field(default=None, ge=1, le=64)
    # Where generated documents are stored; ``data_dir/documents`` when unset.
    documents_dir: Path | None = None
    # Seconds one render may take before the job fails (and is retried).
    render_timeout_s: float = Field(default=120.0, gt=0)
    # How much lower the render processes' CPU priority is (``nice``; 0: the same as
    # the worker's), so that requests and job bookkeeping win the cores from drawing.
    render_nice: int = Field(default=10, ge=0, le=19)


class NotificationSettings(BaseModel):
    """In-app notifications (``ILS_NOTIFICATIONS__URGENT_EMAIL_AFTER_S``, ...)."""

    model_config = {"extra": "forbid"}

    # An urgent notification still unread this long after it was stored is also
    # sent as an e-mail.
    urgent_email_after_s: float = Field(default=900.0, ge=0)
    # How often a web process with live streams looks in the database for
    # notifications it was not signalled about (another process's workers in local
    # mode; a signal lost while Redis restarted). Within a second, as promised.
    stream_poll_s: float = Field(default=0.5, gt=0, le=60)
    # A comment line on an idle stream this often keeps proxies from closing it.
    stream_heartbeat_s: float = Field(default=15.0, gt=0)


class HealthSettings(BaseModel):
    """When the health report names a problem (``ILS_HEALTH__FAILURE_RATE``, ...).

    A queue's own wait limit is ``ILS_QUEUES__<queue>__MAX_WAIT_S``.
    """

    model_config = {"extra": "forbid"}

    # The share of failed jobs among those finished in the window above which a queue
    # is reported, once at least ``failure_min_jobs`` failed (two failures of three
    # jobs say little).
    failure_rate: float = Field(default=0.25, gt=0, le=1)
    failure_min_jobs: int = Field(default=10, ge=1)
    failure_window_s: int = Field(default=900, ge=60, le=86_400)


class AISettings(BaseModel):
    """The AI worker (``ILS_AI__LLM_BASE_URL``, ``ILS_AI__FORECAST_HISTORY_DAYS``, ...).

    Everything the worker computes comes from statistics on the company's own data;
    a language model is optional and only phrases chat answers from the facts the
    worker retrieved. Without ``llm_base_url`` the answer is built from those facts
    directly, so the platform works offline.
    """

    model_config = {"extra": "forbid"}

    # An OpenAI-compatible endpoint (``.../v1``; it receives ``POST /chat/completions``).
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = Field(default=None, repr=False)
    # A slow model must not eat the job's 2-minute lock: past this, the answer is
    # the one built from the facts.
    llm_timeout_s: float = Field(default=20.0, gt=0, le=100)
    # Days of sales history a demand forecast fits on.
    forecast_history_days: int = Field(default=365, ge=28, le=3650)
    # Products fitted per call to the CPU pool; progress is reported after each.
    forecast_batch: int = Field(default=50, ge=1, le=1000)
    # Forecasting processes; one keeps a small machine's cores for requests.
    pool_size: int = Field(default=1, ge=1, le=64)
    # Seconds one batch may take in the pool before the job fails (and is retried).
    compute_timeout_s: float = Field(default=100.0, gt=0)
    # Robust z-score above which a value is an anomaly, and above which the
    # company's admins are notified of it.
    anomaly_threshold: float = Field(default=3.5, gt=0)
    anomaly_notify_score: float = Field(default=5.0, gt=0)

    @field_validator("llm_base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL without spaces")
        return value


class OmaSettings(BaseModel):
    """Lens-tracing files (``ILS_OMA__MAX_UPLOAD_BYTES``, ``ILS_OMA__UPLOADS_DIR``)."""

    model_config = {"extra": "forbid"}

    # A tracing of 1,000 points per eye is about 11 KB; a megabyte is far beyond any
    # real file, and refusing more keeps a request from filling memory or disk.
    max_upload_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    # Where uploaded files are stored; ``data_dir/uploads`` when unset.
    uploads_dir: Path | None = None


class ScheduleSettings(BaseModel):
    """Schedules (``ILS_SCHEDULES__GRACE_S``, ...)."""

    model_config = {"extra": "forbid"}

    # How often each scheduler loop looks for due schedules (local mode); a run starts
    # at most this late.
    poll_s: float = Field(default=1.0, gt=0, le=60)
    # A run this much later than its due time counts as missed (the catch-up policy
    # decides whether it still runs).
    grace_s: float = Field(default=300.0, ge=1)
    # How often the built-in schedules are brought in line with the active companies.
    builtins_sync_s: float = Field(default=300.0, gt=0)
    # Read notifications are deleted by the nightly clean-up after this many days.
    notification_days: int = Field(default=90, ge=1, le=3650)


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file under the data directory."""
    return f"sqlite:///{data_dir / 'ils.db'}"


class Settings(BaseSettings):
    """Everything ILS can be told from outside."""

    model_config = SettingsConfigDict(
        env_prefix="ILS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        # The seed's REDIS_HOST / REDIS_PORT / REDIS_PASSWORD are aliases; code and tests
        # still pass every field by its name.
        populate_by_name=True,
    )

    data_dir: Path = Path("var")
    database_url: str = ""
    # Connections each process keeps open to the database, and how many more it opens
    # at a busy moment (each closed again when returned). Unset: 20 and 20 on SQLite,
    # where a connection is a file handle and its page cache, and SQLAlchemy's 5 and 10
    # on PostgreSQL, where each is a server process counted against max_connections.
    database_pool_size: int | None = Field(default=None, ge=1, le=200)
    database_max_overflow: int | None = Field(default=None, ge=0, le=1000)
    # Redis, in one of three shapes (see ils.redis_settings): a URL; a host and port
    # (the seed's unprefixed REDIS_HOST / REDIS_PORT / REDIS_PASSWORD are read too, and
    # ILS_REDIS_URL wins over them); or Sentinel. Unset: local mode.
    redis_url: str | None = None
    redis_host: str | None = Field(
        default=None, validation_alias=AliasChoices("ILS_REDIS_HOST", "REDIS_HOST")
    )
    redis_port: int = Field(
        default=6379, ge=1, le=65535, validation_alias=AliasChoices("ILS_REDIS_PORT", "REDIS_PORT")
    )
    redis_db: int = Field(default=0, ge=0)
    redis_username: str | None = None
    # The data nodes' password (with Sentinel: the master's); a URL's own wins.
    redis_password: SecretStr | None = Field(
        default=None,
        repr=False,
        validation_alias=AliasChoices("ILS_REDIS_PASSWORD", "REDIS_PASSWORD"),
    )
    # "host:port,host:port"; the master of ``redis_sentinel_service`` is asked of them.
    redis_sentinels: str | None = None
    redis_sentinel_service: str = "mymaster"
    redis_sentinel_password: SecretStr | None = Field(default=None, repr=False)
    # How often the sentinels are asked whether the master moved (then connected anew).
    redis_sentinel_check_interval_s: float = Field(default=0.2, gt=0, le=60)
    # TLS: on with a rediss:// URL, or with ``redis_tls`` for a host or sentinels (the
    # sentinels are then spoken to over TLS too). Without a CA file the system's trust
    # store checks the server; the client certificate is for ``tls-auth-clients yes``.
    redis_tls: bool = False
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    redis_prefix: str = "bull"
    redis_require_noeviction: bool = False
    # An enqueue never waits longer than this on Redis. An add still unanswered then is
    # held in the outbox and resolved into Redis by its id (never run locally): see
    # docs/fallback.md.
    redis_enqueue_timeout_ms: int = Field(default=25, ge=1)
    # A bulk add gets this much more per job (a healthy Redis takes about 0.1 ms a job,
    # so 500 jobs outlast 25 ms): a large batch is not a sign of an outage.
    redis_enqueue_ms_per_job: float = Field(default=1.0, ge=0)
    redis_connect_timeout_ms: int = Field(default=500, ge=1)
    # How often a degraded process probes Redis to switch back.
    redis_probe_interval_s: float = Field(default=1.0, gt=0)
    # A suspected outage (a timeout, a dropped connection) is confirmed by this many
    # consecutive failed probes, each a PING in a thread with this timeout: a busy
    # event loop cannot fail them. A refused connection opens the gate at once.
    redis_down_after_failed_probes: int = Field(default=3, ge=1, le=100)
    redis_probe_timeout_ms: int = Field(default=500, ge=10)
    # Every job added to Redis keeps a deduplication key on its id this long, so a held
    # job resolved after retention removed it (already run) is not added again.
    redis_dedup_ttl_s: int = Field(default=600, ge=0)
    queues: dict[str, QueueOverride] = Field(default_factory=dict)
    local_poll_interval_ms: int = Field(default=100, ge=5)
    # How many times a job may lose its worker (the process died, or its lock expired)
    # and go back to waiting; the next loss fails it for good. 2 survives two crashes.
    max_stalled_count: int = Field(default=2, ge=0)
    max_payload_bytes: int = Field(default=64 * 1024, ge=256)
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    # How often a worker process records that it is alive; the health body counts a
    # worker as connected for three of these.
    worker_heartbeat_s: float = Field(default=10.0, gt=0, le=300)
    outbox_sweep_interval_s: float = Field(default=2.0, gt=0)
    log_level: str = "INFO"
    # The web app (``ils serve``). The key signing session cookies, the same on every
    # web server (see ils.secret_key): given as is or as a file. Left empty, the
    # embedded default generates one into ``data_dir/secret_key``; any other deployment
    # refuses to start without it. Old keys, comma-separated, still verify cookies
    # for a while after a rotation.
    secret_key: str = Field(default="", repr=False)
    secret_key_file: Path | None = None
    secret_key_previous: str = Field(default="", repr=False)
    session_ttl_hours: float = Field(default=12, gt=0)
    # Production serves HTTPS: set it so browsers never send the session in clear text.
    cookie_secure: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For
    # and X-Forwarded-Proto ``ils serve`` believes. Empty: those headers are ignored
    # whoever sends them, so no client can choose the address the audit log records.
    trusted_proxies: str = ""
    # Run the workers inside the web process; off when they run as ``ils worker``.
    start_workers: bool = True
    # Where people reach the platform: the base of every link in e-mails.
    public_url: str = "http://127.0.0.1:8000"
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    pdf: PdfSettings = Field(default_factory=PdfSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    ai: AISettings = Field(default_factory=AISettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    oma: OmaSettings = Field(default_factory=OmaSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    # Quotas and fair priorities per company on shared queues (ils.fairness_settings).
    fairness: FairnessSettings = Field(default_factory=FairnessSettings)
    # Sign-in throttling and per-session request limits (ils.limit_settings).
    sign_in: SignInSettings = Field(default_factory=SignInSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)

    @field_validator("redis_url", "redis_host", "redis_username", "redis_sentinels")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        """Each entry an IP address or network, so a typo fails at start instead of
        silently trusting nobody (or, worse, the wrong hosts)."""
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return ",".join(entries)

    @field_validator("redis_port", mode="before")
    @classmethod
    def _port_of_a_service_link(cls, value: object) -> object:
        """Kubernetes (and Docker links) set ``REDIS_PORT=tcp://10.0.0.7:6379`` for a
        service named redis, in every pod: read its port rather than refuse to start."""
        if isinstance(value, str) and "://" in value:
            return value.rpartition(":")[2]
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file under ``data_dir``."""
        return self.database_url or default_database_url(self.data_dir)

    @field_validator("public_url")
    @classmethod
    def _plain_base_url(cls, value: str) -> str:
        """Links are built as ``public_url + "/orders/..."``: no trailing slash, and only
        http(s), since the value ends up in every e-mail's ``href``."""
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL without spaces")
        return value

    @property
    def mail_dir(self) -> Path:
        """Where the file transport writes ``.eml`` files (no SMTP host configured)."""
        return self.data_dir / "mail"

    @property
    def documents_dir(self) -> Path:
        """Where the PDF worker stores documents (``var/documents`` by default)."""
        return self.pdf.documents_dir or self.data_dir / "documents"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded files (tracing files) are stored (``var/uploads`` by default)."""
        return self.oma.uploads_dir or self.data_dir / "uploads"

    @property
    def redis_configured(self) -> bool:
        """Redis mode is chosen by setting ``ILS_REDIS_URL`` (or a host, or sentinels);
        none of them means local mode."""
        return bool(self.redis_url or self.redis_host or self.redis_sentinels)

    def redis_connection(self) -> RedisConnection | None:
        """Where Redis is, as every client of the process must read it; ``None`` in local
        mode. Raises :class:`~ils.errors.ConfigurationError` for settings that cannot
        work together (see :func:`ils.redis_settings.redis_connection_of`)."""
        return redis_connection_of(self)

    @property
    def embedded(self) -> bool:
        """The embedded default: SQLite and no Redis, so one machine. Anything else may
        run several web servers, which must share one secret key."""
        return not self.redis_configured and self.effective_database_url.startswith("sqlite")


def resolve_secret_key(settings: Settings) -> str:
    """The key that signs new session cookies (see :func:`ils.secret_key.resolve_secret_keys`,
    which also gives the previous keys still accepted)."""
    return resolve_secret_keys(settings).current


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and ``.env``), with explicit overrides on top."""
    return Settings(**overrides)
