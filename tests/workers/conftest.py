"""Fixtures of the e-mail worker tests: an SMTP server, a job system with the network.

* ``mail_server``: a real aiosmtpd server on 127.0.0.1 (see ``support.MailServer``).
* ``make_env(database="sqlite" | "postgres", smtp=..., **settings)``: a local-mode job
  system on a fresh database with the lab network in it and the real e-mail
  handlers registered; ``env.run(*refs)`` runs the e-mail queue until those jobs are
  completed or failed and returns their records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.mail import MailMessage
from ils.jobs.model import JobRecord, JobRef, JobState
from ils.jobs.registry import HandlerRegistry
from ils.jobs.runner import Runner
from ils.jobs.system import JobSystem
from ils.settings import Settings
from ils.workers import email
from ils.workers.email import EmailWorker
from tests.workers.support import (
    Network,
    RunningServer,
    build_network,
    eventually,
    mail_rows,
    start_mail_server,
)

#: Quick retries and lock expiry so retry tests take milliseconds, not the 5 s base.
FAST_EMAIL = {"backoff_delay_ms": 50, "lock_duration_ms": 2000, "stalled_interval_ms": 500}


@pytest.fixture
def mail_server() -> Iterator[RunningServer]:
    """A real SMTP server on 127.0.0.1 and a free port."""
    server = start_mail_server()
    try:
        yield server
    finally:
        server.controller.stop()


def smtp_to(server: RunningServer, **extra: Any) -> dict[str, Any]:
    """SMTP settings pointing at ``server`` (plain SMTP: aiosmtpd offers no TLS here)."""
    return {"host": "127.0.0.1", "port": server.port, "security": "none", **extra}


@dataclass
class MailEnv:
    """A job system, the network in its database and the e-mail worker."""

    system: JobSystem
    worker: EmailWorker
    registry: HandlerRegistry
    network: Network
    sessions: async_sessionmaker[AsyncSession]

    async def run(self, *refs: JobRef, timeout: float = 30.0) -> list[JobRecord]:
        """Work the e-mail queue until every job of ``refs`` is completed or failed."""
        runner = Runner(self.system.stores(), [self.system.catalogue["email"]], self.registry)
        runner.start()
        try:
            await eventually(lambda: self._settled([ref.job_id for ref in refs]), timeout)
        finally:
            await runner.stop(5)
        return [await self.job(ref.job_id) for ref in refs]

    async def job(self, job_id: str) -> JobRecord:
        record = await self.system.local.get_job("email", job_id)
        assert record is not None
        return record

    async def _settled(self, job_ids: list[str]) -> bool:
        for job_id in job_ids:
            record = await self.system.local.get_job("email", job_id)
            if record is None or record.state not in (JobState.COMPLETED, JobState.FAILED):
                return False
        return True

    async def messages(self) -> list[MailMessage]:
        """Every row of the message log, oldest first."""
        return await mail_rows(self.sessions)


EnvFactory = Callable[..., Awaitable[MailEnv]]


@pytest.fixture
async def make_env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EnvFactory]:
    """Builds :class:`MailEnv` objects; everything is closed after the test."""
    made: list[MailEnv] = []

    async def factory(
        database: str = "sqlite", smtp: dict[str, Any] | None = None, **overrides: Any
    ) -> MailEnv:
        options: dict[str, Any] = {
            "data_dir": tmp_path / "var",
            "redis_url": None,
            "local_poll_interval_ms": 20,
            "queues": {"email": {**FAST_EMAIL, **overrides.pop("email_queue", {})}},
            "smtp": smtp or {},
            **overrides,
        }
        if database == "postgres":
            url = request.getfixturevalue("pg_url")
            await upgrade_database(url)
            options["database_url"] = url
        system = await JobSystem.open(Settings(_env_file=None, **options))
        registry = HandlerRegistry(system.job_types)
        worker = email.register(registry, system.worker_context())
        sessions = session_factory(system.engine)
        env = MailEnv(system, worker, registry, await build_network(sessions), sessions)
        made.append(env)
        return env

    try:
        yield factory
    finally:
        for env in made:
            await env.worker.close()
            await env.system.close()
