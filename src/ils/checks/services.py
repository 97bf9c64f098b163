"""Checks of what the settings point at: the database, Redis, storage and the mail server.

Each opens its own short-lived client with the check's timeout, through the same
factories the app uses (``ils.db.migrations``, ``ils.jobs.stores.redis.connect``,
``ils.storage.backends``), so what is checked is what the processes will talk to.
Heavy imports stay inside the functions: ``ils check`` on a deployment without Redis
or SMTP does not load their clients.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from ils.checks.result import CheckResult, describe_error, ok, problem, warning
from ils.errors import ConfigurationError
from ils.settings import Settings

#: BullMQ's Lua scripts use commands of Redis 5.0 (streams for events, ZPOPMIN).
MIN_REDIS_VERSION = (5, 0)


# -- database --------------------------------------------------------------------------


def _database_where(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (``None`` for another database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _creatable(path: Path) -> str | None:
    """Why ``path`` (a file) cannot be created, or ``None`` when it can."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a directory"
            return None
    return None  # a relative path under the working directory


async def check_database(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """The app database answers and is migrated to the code's newest revision.

    The embedded default (SQLite under ``data_dir``) migrates itself at start, so a
    missing or older file is fine there; any other database is migrated on purpose
    with ``ils db upgrade`` and a process refuses to start on an older one.
    """
    from ils.db.migrations import current_revision, head_revision

    url = settings.effective_database_url
    embedded = not settings.database_url
    where = _database_where(url)
    sqlite_file = _sqlite_file(url)
    head = head_revision()
    if sqlite_file is not None and not sqlite_file.exists():
        # Opening it would create an empty file: say what a start would do instead.
        reason = _creatable(sqlite_file)
        if reason is not None:
            return [
                problem(
                    "database",
                    f"the database file {sqlite_file} cannot be created: {reason}",
                    "set ILS_DATA_DIR (or ILS_DATABASE_URL) to a writable directory",
                    fatal=True,
                )
            ]
        if embedded:
            return [ok("database", f"{where} does not exist yet: the first start creates it")]
        return [
            problem(
                "database",
                f"{where} does not exist",
                "run `ils db upgrade` to create and migrate it",
                fatal=True,
            )
        ]
    try:
        # The drivers' own connect timeouts are long (asyncpg: 60 s).
        async with asyncio.timeout(timeout_s):
            current = await current_revision(url)
    except TimeoutError:
        return [
            problem(
                "database",
                f"{where} gives no answer within {timeout_s:g} s",
                "make sure the database runs and this machine may reach it (firewall, "
                "host and port in ILS_DATABASE_URL)",
                fatal=True,
            )
        ]
    except Exception as exc:  # whatever the driver raises: unreachable, refused, no such db
        return [_unusable_database(where, exc)]
    if current == head:
        return [ok("database", f"{where} answers and is at the newest revision ({head})")]
    if current is not None and current not in _known_revisions():
        return [
            problem(
                "database",
                f"{where} is at revision {current}, which this code does not know (its "
                f"newest is {head}): a newer release migrated it",
                "run the release that migrated the database, or restore a backup taken "
                "before that migration",
                fatal=True,
            )
        ]
    if embedded:
        return [
            ok(
                "database",
                f"{where} is at revision {current or 'none'}; the next start migrates it to {head}",
            )
        ]
    return [
        problem(
            "database",
            f"{where} is at revision {current or 'none'}, the code needs {head}",
            "run `ils db upgrade` (with the same settings) before starting the new code",
            fatal=True,
        )
    ]


def _unusable_database(where: str, exc: Exception) -> CheckResult:
    """A network failure (nothing answers) reads differently from a refusal (wrong
    password, no such database): each has its own fix."""
    inner = getattr(exc, "orig", None) or exc
    if isinstance(inner, OSError):
        return problem(
            "database",
            f"{where} does not answer: {describe_error(exc)}",
            "start the database or correct the host and port in ILS_DATABASE_URL",
            fatal=True,
        )
    return problem(
        "database",
        f"{where} refuses us: {describe_error(exc)}",
        "correct the user, password or database name in ILS_DATABASE_URL, or the "
        "database's access rules",
        fatal=True,
    )


def _known_revisions() -> set[str]:
    """Every revision of our migration scripts."""
    from alembic.script import ScriptDirectory

    from ils.db.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


# -- Redis -----------------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def redis_version_result(info: dict[str, Any], where: str) -> CheckResult:
    """Redis answers; its version is one BullMQ runs on."""
    version = str(info.get("redis_version", "unknown"))
    needed = ".".join(map(str, MIN_REDIS_VERSION))
    if version != "unknown" and _version(version) < MIN_REDIS_VERSION:
        return problem(
            "redis",
            f"Redis {version} at {where} is too old: BullMQ needs Redis {needed} or newer",
            f"upgrade Redis to {needed} or newer (6.2 or newer recommended)",
        )
    return ok("redis", f"Redis {version} at {where} answers (BullMQ needs {needed} or newer)")


def redis_eviction_result(policy: str | None, *, required: bool) -> CheckResult:
    """Redis never deletes keys to free memory: evicting one loses a job silently."""
    fix = (
        "run `CONFIG SET maxmemory-policy noeviction` and put `maxmemory-policy noeviction` "
        "in redis.conf (or your provider's parameter group) so it survives a restart"
    )
    if policy is None:
        return warning(
            "redis_eviction",
            "Redis did not tell its maxmemory-policy (CONFIG and INFO are restricted)",
            "make sure the policy is noeviction in your provider's settings",
        )
    if policy != "noeviction":
        consequence = (
            "processes refuse to start (ILS_REDIS_REQUIRE_NOEVICTION=true)"
            if required
            else "under memory pressure Redis deletes queue keys and jobs are lost"
        )
        return problem(
            "redis_eviction",
            f"Redis maxmemory-policy is {policy!r}, not 'noeviction': {consequence}",
            fix,
            fatal=required,
        )
    return ok("redis_eviction", "Redis maxmemory-policy is noeviction")


def redis_persistence_result(info: dict[str, Any]) -> CheckResult:
    """Redis keeps an append-only file, so a restart does not forget recent jobs."""
    if str(info.get("aof_enabled", "0")) != "1":
        return warning(
            "redis_persistence",
            "Redis appendonly is off: jobs added since its last snapshot are lost when it restarts",
            "run `CONFIG SET appendonly yes` and put `appendonly yes` in redis.conf",
        )
    return ok("redis_persistence", "Redis appendonly is on")


async def check_redis(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """Redis (when configured) answers, is new enough, never evicts, persists jobs.

    An unreachable Redis does not stop a start (jobs go to the local store until it is
    back), but ``ils check`` reports it: the deployment is not what it was meant to be.
    """
    if not settings.redis_configured:
        return [ok("redis", "not configured: jobs are kept in the app database (local mode)")]
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from ils.jobs.stores.redis.admin import eviction_policy
    from ils.jobs.stores.redis.connect import async_client

    try:
        connection = settings.redis_connection()
    except ConfigurationError as exc:
        return [
            problem(
                "redis",
                f"the Redis settings do not work together: {exc}",
                "correct the ILS_REDIS_* variables named",
                fatal=True,
            )
        ]
    if connection is None:  # redis_configured said otherwise; nothing to look at
        return [ok("redis", "not configured: jobs are kept in the app database (local mode)")]
    where = connection.describe()
    client = async_client(
        connection,
        connect_timeout_s=timeout_s,
        socket_timeout_s=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        info: dict[str, Any] = await client.info()
        policy = await eviction_policy(client, info)
    except Exception as exc:  # refused, timed out, TLS, auth: all mean "not usable"
        return [
            problem(
                "redis",
                f"Redis at {where} does not answer: {describe_error(exc)}; jobs go to the "
                "local store until it does",
                "start Redis or correct ILS_REDIS_URL (or the host, sentinel and TLS settings)",
            )
        ]
    finally:
        await client.aclose()
    return [
        redis_version_result(info, where),
        redis_eviction_result(policy, required=settings.redis_require_noeviction),
        redis_persistence_result(info),
    ]


# -- storage ---------------------------------------------------------------------------


async def _probe_storage(storage: Any, area: str) -> str | None:
    """Write, read back and delete one small object; why it failed, or ``None``."""
    key = f"ils-check-{secrets.token_hex(8)}.probe"
    data = f"ils check {time.time()}\n".encode()
    step = "write"
    try:
        await storage.put(key, data)
        step = "read back"
        if await storage.get(key) != data:
            return f"{area}: what was read back differs from what was written"
        step = "delete"
        await storage.delete(key)
    except Exception as exc:  # StorageError and whatever a backend lets through
        return f"{area}: cannot {step} a probe object ({describe_error(exc)})"
    return None


async def check_storage(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """Documents and uploads can be written, read back and deleted where they are kept.

    The storage is built by the same factory as the app's, so the probe goes through
    exactly the backend (local directories or a bucket) the workers will use.
    """
    from ils.storage.backends import open_storages

    backend = settings.storage.backend
    fix = (
        "make the directories writable, or point ILS_DATA_DIR, ILS_PDF__DOCUMENTS_DIR and "
        "ILS_OMA__UPLOADS_DIR at writable ones"
        if backend == "local"
        else "check ILS_STORAGE__BUCKET, ILS_STORAGE__ENDPOINT_URL and the credentials "
        "(they need to put, get and delete objects)"
    )
    try:
        storages = open_storages(settings)
    except Exception as exc:  # ConfigurationError, or a client that cannot be built
        return [problem("storage", f"the storage cannot be set up: {describe_error(exc)}", fix)]
    failures = await asyncio.gather(
        _probe_storage(storages.documents, "documents"),
        _probe_storage(storages.uploads, "uploads"),
    )
    found = [failure for failure in failures if failure is not None]
    if found:
        return [problem("storage", "; ".join(found), fix)]
    return [ok("storage", f"files can be written, read and deleted in {storages.where}")]


# -- SMTP ------------------------------------------------------------------------------


async def check_smtp(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """The mail server (when configured) greets us and answers EHLO; no mail is sent.

    With STARTTLS the upgrade is done too, so a certificate the worker would refuse
    shows here rather than on the first e-mail. No AUTH: a wrong password tried by
    every check could lock the account.
    """
    smtp = settings.smtp
    if not smtp.configured:
        return [
            ok(
                "smtp",
                f"no SMTP host (ILS_SMTP__HOST): e-mails are written as .eml files under "
                f"{settings.mail_dir} instead of being sent",
            )
        ]
    import aiosmtplib

    where = f"{smtp.host}:{smtp.effective_port} ({smtp.security})"
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.effective_port,
        use_tls=smtp.security == "tls",
        start_tls=False,
        validate_certs=smtp.validate_certs,
        timeout=timeout_s,
        # Not getfqdn(): it may wait on DNS. The name only matters in EHLO.
        local_hostname=socket.gethostname() or "localhost",
    )
    fix = (
        "start the mail server or correct ILS_SMTP__HOST, ILS_SMTP__PORT and "
        "ILS_SMTP__SECURITY (unset ILS_SMTP__HOST to write .eml files instead)"
    )
    try:
        greeting = await client.connect()
        await client.ehlo()
        if smtp.security == "starttls":
            if not client.supports_extension("starttls"):
                return [
                    problem(
                        "smtp",
                        f"the SMTP server at {where} does not offer STARTTLS",
                        "set ILS_SMTP__SECURITY to tls (port 465) or none (a local relay)",
                    )
                ]
            await client.starttls()
            await client.ehlo()
        if smtp.username is not None and not client.supports_extension("auth"):
            return [
                warning(
                    "smtp",
                    f"the SMTP server at {where} does not offer AUTH, but "
                    "ILS_SMTP__USERNAME is set",
                    "unset ILS_SMTP__USERNAME / ILS_SMTP__PASSWORD, or use the port "
                    "that accepts authentication",
                )
            ]
    except Exception as exc:  # refused, timed out, TLS refused, 4xx/5xx greeting
        return [problem("smtp", f"the SMTP server at {where} fails: {describe_error(exc)}", fix)]
    finally:
        if client.is_connected:
            try:
                await client.quit(timeout=min(timeout_s, 2.0))
            except Exception:  # a server that hangs up on QUIT is no finding
                client.close()
    return [ok("smtp", f"the SMTP server at {where} greets ({greeting.code}) and answers EHLO")]
