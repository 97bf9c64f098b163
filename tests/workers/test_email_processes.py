"""A real ``ils worker`` process killed between the send and the job's completion.

The first worker sends the order confirmation (the server accepts it, the row says
``sent``), then hangs before returning, and is SIGKILLed. Its job's lock expires, a
second worker takes the job over and completes it without sending a second copy.
Run with the job store on SQLite, PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ils.db.engine import session_factory
from ils.db.migrations import upgrade_database
from ils.domain.mail import MailState
from ils.jobs.model import JobRecord, JobState
from ils.jobs.system import JobSystem
from ils.settings import Settings
from tests.conftest import delete_prefix
from tests.workers.support import RunningServer, build_network, eventually, mail_rows

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a worker process reads from ``env``, for the test's own system."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Settings(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ils",
                "worker",
                "--queues",
                "email",
                "--handlers",
                "tests.support.email_hooks:register",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def job(system: JobSystem, job_id: str) -> JobRecord | None:
    for store in system.stores():
        record = await store.get_job("email", job_id)
        if record is not None:
            return record
    return None


@pytest.mark.parametrize("mode", ["sqlite", "postgres", "redis"])
async def test_sigkill_between_send_and_completion_yields_one_copy(
    request: pytest.FixtureRequest, tmp_path: Path, mail_server: RunningServer, mode: str
) -> None:
    record = tmp_path / "record.log"
    env = {
        "ILS_DATA_DIR": str(tmp_path / "var"),
        "ILS_LOCAL_POLL_INTERVAL_MS": "20",
        "ILS_SHUTDOWN_GRACE_S": "5",
        "ILS_TEST_RECORD": str(record),
        "ILS_SMTP__HOST": "127.0.0.1",
        "ILS_SMTP__PORT": str(mail_server.port),
        "ILS_SMTP__SECURITY": "none",
        "ILS_QUEUES__EMAIL__LOCK_DURATION_MS": "2000",
        "ILS_QUEUES__EMAIL__STALLED_INTERVAL_MS": "500",
    }
    if mode == "postgres":
        url = request.getfixturevalue("pg_url")
        await upgrade_database(url)
        env["ILS_DATABASE_URL"] = url
    if mode == "redis":
        env["ILS_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["ILS_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    system = await JobSystem.open(settings_from(env))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        sessions = session_factory(system.engine)
        network = await build_network(sessions)
        ref = await system.helpers.queue_order_confirmation_email(
            network.order.id, network.orderer.id
        )

        def lines() -> list[str]:
            return record.read_text().splitlines() if record.exists() else []

        def logs() -> str:
            return "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("*.log"))

        workers.append(start_worker({**env, "ILS_TEST_HANG_AFTER_SEND": "1"}, tmp_path / "w1.log"))
        try:
            await eventually(lambda: len(lines()) == 1, 60)
        except AssertionError:
            raise AssertionError(logs()) from None
        # Sent, recorded as sent, and the job not completed: now the process dies.
        assert lines()[0].split()[2] == "sent"
        (row,) = await mail_rows(sessions)
        assert row.state is MailState.SENT
        running = await job(system, ref.job_id)
        assert running is not None and running.state is JobState.ACTIVE
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()

        workers.append(start_worker(env, tmp_path / "w2.log"))

        async def completed() -> bool:
            found = await job(system, ref.job_id)
            return found is not None and found.state is JobState.COMPLETED

        try:
            await eventually(completed, 60)
        except AssertionError:
            raise AssertionError(logs()) from None
        done = await job(system, ref.job_id)
        assert done is not None
        result: Any = done.result
        assert result["messages"] == [{"messageId": row.message_id, "state": "already-sent"}]
        assert len(mail_server.handler.messages()) == 1
        assert mail_server.handler.data_commands == 1
        (row,) = await mail_rows(sessions)
        assert (row.state, row.attempts) == (MailState.SENT, 1)
        pids = {line.split()[1] for line in lines()}
        assert len(pids) == 2  # the second worker ran the job again, and sent nothing
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        await system.close()
        if mode == "redis":
            await delete_prefix(env["ILS_REDIS_URL"], env["ILS_REDIS_PREFIX"])
