"""Two copies of one e-mail job at once send one message: the send lease.

A job can run twice concurrently (the same job id in two stores, or a worker that
lost its lock and still runs). Both copies open the same ``mail_messages`` row; the
claim just before DATA is a compare-and-set, so one copy sends and the other waits
for its outcome instead of sending a second copy. A holder that died mid-send keeps
the lease until it expires; then a later attempt sends under the same Message-ID.

Every test talks to a real SMTP server (aiosmtpd) on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from ils.clock import ManualClock, SystemClock
from ils.db.engine import create_engine
from ils.db.transactions import Transactions
from ils.domain.mail import MailMessage, MailState
from ils.errors import MailRefusedError
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.workers.email import EmailWorker
from ils.workers.email.compose import message_key
from ils.workers.email.log import MessageLog, NewMessage
from ils.workers.email.transport import make_transport
from tests.workers.conftest import EnvFactory, MailEnv, smtp_to
from tests.workers.support import (
    FakeContext,
    MailServer,
    RunningServer,
    eventually,
    start_mail_server,
)

pytestmark = pytest.mark.parametrize("database", ["sqlite", "postgres"])

#: Longest the gated server holds an envelope for the other copy's to arrive.
GATE_TIMEOUT_S = 10.0


@dataclass
class HoldingServer(MailServer):
    """Counts the envelopes that reach RCPT and can hold one there until an event is
    set (or :data:`GATE_TIMEOUT_S` passes). The wait runs on aiosmtpd's own event
    loop, so the other connections are served meanwhile."""

    arrived: int = 0

    async def hold_until(self, event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):  # the test's assertions tell what failed
            await asyncio.wait_for(event.wait(), GATE_TIMEOUT_S)


@dataclass
class GatedServer(HoldingServer):
    """Answers RCPT only once ``expected`` envelopes have reached it.

    So both copies of the job are past opening the row and past the envelope before
    either hands over any content: without a claim both would then send.
    """

    expected: int = 2
    everyone_in: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.everyone_in.set()
        await self.hold_until(self.everyone_in)
        return await super().handle_RCPT(server, session, envelope, address, options)


@dataclass
class SecondHeldServer(HoldingServer):
    """Holds the second envelope's RCPT until the test lets it go, so the first copy
    can finish (its outcome recorded) while the second has opened the row and waits."""

    held: int = 0
    go_on: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.arrived += 1
        if self.arrived > 1:
            self.held += 1
            await self.hold_until(self.go_on)
        return await super().handle_RCPT(server, session, envelope, address, options)


def running(handler: MailServer) -> Iterator[RunningServer]:
    """``handler`` served on 127.0.0.1 and a free port while the test runs."""
    started = start_mail_server(handler)
    try:
        yield started
    finally:
        started.controller.stop()


@pytest.fixture
def second_held_server() -> Iterator[RunningServer]:
    """A :class:`SecondHeldServer` on 127.0.0.1 and a free port."""
    yield from running(SecondHeldServer())


@pytest.fixture
def gated_server() -> Iterator[RunningServer]:
    """A :class:`GatedServer` on 127.0.0.1 and a free port."""
    yield from running(GatedServer())


def confirmation(env: MailEnv) -> OrderConfirmationEmail:
    return OrderConfirmationEmail(order_id=env.network.order.id, user_id=env.network.orderer.id)


async def second_process(env: MailEnv, closing: list[Callable[[], Any]]) -> EmailWorker:
    """Another worker on the same database with its own engine and SMTP connections,
    as a second worker process has (SQLite: no shared write turn either)."""
    settings = env.system.settings
    engine = create_engine(settings.effective_database_url)
    transport = make_transport(settings, 5)
    closing.extend([transport.close, engine.dispose])
    return EmailWorker(settings, Transactions(engine), transport, SystemClock())


@pytest.mark.parametrize("copies", ["one-process", "two-processes"])
async def test_two_copies_of_one_job_started_together_send_one_message(
    make_env: EnvFactory, database: str, copies: str, gated_server: RunningServer
) -> None:
    env = await make_env(database=database, smtp=smtp_to(gated_server))
    closing: list[Callable[[], Any]] = []
    try:
        other = env.worker if copies == "one-process" else await second_process(env, closing)
        first, second = FakeContext("job-7"), FakeContext("job-7")
        results = await asyncio.wait_for(
            asyncio.gather(
                env.worker.order_confirmation(confirmation(env), first),
                other.order_confirmation(confirmation(env), second),
            ),
            60,
        )
    finally:
        for close in closing:
            await close()
    handler = gated_server.handler
    assert isinstance(handler, GatedServer)
    assert handler.arrived == 2  # both copies got as far as the envelope
    (message,) = handler.messages()
    states = sorted(result["messages"][0]["state"] for result in results)
    assert states == ["already-sent", "sent"]
    assert {result["messages"][0]["messageId"] for result in results} == {
        message.message["Message-ID"]
    }
    (row,) = await env.messages()
    assert (row.state, row.attempts, row.error) == (MailState.SENT, 1, None)


async def test_a_copy_that_waited_on_a_refused_holder_fails_without_sending(
    make_env: EnvFactory, database: str, gated_server: RunningServer
) -> None:
    """The holder's content is refused for good (550 to DATA): the copy that waited
    does not hand the server the same message again, and fails for good too."""
    env = await make_env(database=database, smtp=smtp_to(gated_server))
    gated_server.handler.data_replies.append("550 5.7.1 Message rejected")
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(
                env.worker.order_confirmation(confirmation(env), FakeContext("job-8"))
                for _ in range(2)
            ),
            return_exceptions=True,
        ),
        60,
    )
    assert all(isinstance(outcome, MailRefusedError) for outcome in outcomes), outcomes
    assert gated_server.handler.data_commands == 1
    (row,) = await env.messages()
    assert (row.state, row.attempts) == (MailState.FAILED, 1)


async def test_a_copy_that_opened_the_row_before_the_holder_was_refused_does_not_send(
    make_env: EnvFactory, database: str, second_held_server: RunningServer
) -> None:
    """The second copy opened the row, then the first claimed it, was refused for good
    (550 to DATA) and recorded so, all before the second reached its claim. The row is
    no longer what the second copy saw: its claim must fail, not take the refused row
    and hand the server the same message again (CI saw two DATA commands here)."""
    env = await make_env(database=database, smtp=smtp_to(second_held_server))
    handler = second_held_server.handler
    assert isinstance(handler, SecondHeldServer)
    handler.data_replies.append("550 5.7.1 Message rejected")
    copies = [
        asyncio.create_task(env.worker.order_confirmation(confirmation(env), FakeContext("job-8")))
        for _ in range(2)
    ]

    async def first_refused_second_held() -> bool:
        rows = await env.messages()
        return handler.held == 1 and [row.state for row in rows] == [MailState.FAILED]

    try:
        await eventually(first_refused_second_held)
    finally:
        second_held_server.controller.loop.call_soon_threadsafe(handler.go_on.set)
    outcomes = await asyncio.wait_for(asyncio.gather(*copies, return_exceptions=True), 60)
    assert all(isinstance(outcome, MailRefusedError) for outcome in outcomes), outcomes
    assert handler.data_commands == 1
    (row,) = await env.messages()
    assert (row.state, row.attempts) == (MailState.FAILED, 1)


async def test_a_lease_left_by_a_dead_holder_is_taken_over_once_it_expires(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    """A copy claimed the message and its process died mid-send: the row says
    ``sending`` with no error. While the lease lasts a later attempt waits (the holder
    may still be sending); once it expired, it sends under the same Message-ID."""
    env = await make_env(database=database, smtp=smtp_to(mail_server))
    clock = ManualClock(SystemClock().now_ms())
    worker = EmailWorker(
        env.system.settings,
        Transactions(env.system.engine, env.system.write_turn),
        make_transport(env.system.settings, 5),
        clock,
    )
    try:
        payload = confirmation(env)
        slot = f"user:{env.network.orderer.id}"
        key = message_key(
            "email", "job-9", "order-confirmation", payload.model_dump_json(by_alias=True), slot
        )
        message_id = f"<{key}@localhost>"
        await worker.log.open(
            NewMessage(
                message_id=message_id,
                job_id="job-9",
                queue="email",
                job_name="order-confirmation",
                slot=slot,
                company_id=env.network.lab.id,
                recipient_company_id=env.network.practice.id,
                recipient="ann@brightside.example",
                subject="Order",
                transport="smtp",
            )
        )
        async with env.sessions() as session, session.begin():
            await session.execute(  # what the dead holder's claim left
                update(MailMessage)
                .where(MailMessage.message_id == message_id)
                .values(
                    state=MailState.SENDING,
                    attempts=1,
                    error=None,
                    sending_at=datetime.fromtimestamp(clock.now_ms() / 1000, UTC),
                )
            )
        later = FakeContext("job-9", attempt=2)
        task = asyncio.create_task(worker.order_confirmation(payload, later))
        await eventually(
            lambda: task.done() or any("another attempt" in line for line in later.lines)
        )
        assert not task.done(), "sent while the holder's lease was live"
        assert mail_server.handler.messages() == []
        clock.advance(10 * 60 * 1000)  # far past the lease
        result = await asyncio.wait_for(task, 30)
    finally:
        await worker.close()
    assert result["messages"] == [{"messageId": message_id, "state": "sent"}]
    (message,) = mail_server.handler.messages()
    assert message.message["Message-ID"] == message_id
    (row,) = await env.messages()
    assert (row.state, row.attempts, row.error) == (MailState.SENT, 2, None)


async def test_only_the_holder_ends_its_lease(make_env: EnvFactory, database: str) -> None:
    """The outcomes other copies record cannot free a lease they do not hold: a copy
    refused before it claimed, or a holder whose lease expired and was taken over."""
    env = await make_env(database=database)
    clock = ManualClock(SystemClock().now_ms())
    log = MessageLog(Transactions(env.system.engine, env.system.write_turn), clock, lease_s=90)
    message_id = "<lease@localhost>"
    await log.open(
        NewMessage(
            message_id=message_id,
            job_id="job-1",
            queue="email",
            job_name="order-confirmation",
            slot="user:x",
            company_id=env.network.lab.id,
            recipient_company_id=None,
            recipient="a@example.com",
            subject="S",
            transport="smtp",
        )
    )

    async def row() -> tuple[MailState, int, str | None]:
        (found,) = await env.messages()
        return found.state, found.attempts, found.error

    assert await log.claim(message_id, seen=0) == 1
    assert await log.claim(message_id, seen=1) is None  # live lease
    looked = await log.look(message_id)
    assert looked is not None and looked.leased
    # Another copy refused before its claim (550 to RCPT, 421 on connect).
    await log.mark_failed(message_id, "550 no such user", claim=None)
    await log.mark_deferred(message_id, "421 busy", state=None, claim=None)
    assert await row() == (MailState.SENDING, 1, None)
    assert await log.claim(message_id, seen=1) is None

    clock.advance(91_000)  # the holder died: its lease runs out
    assert await log.claim(message_id, seen=0) is None  # what it saw is out of date
    assert await log.claim(message_id, seen=1) == 2
    # The first holder was only slow: its late outcome leaves the new holder's lease.
    await log.mark_deferred(message_id, "451 try later", state=MailState.PENDING, claim=1)
    assert await row() == (MailState.SENDING, 2, None)
    assert await log.claim(message_id, seen=2) is None

    # The new holder's reply is lost: unknown outcome, lease over, a retry sends at once.
    await log.mark_deferred(message_id, "timeout", state=MailState.SENDING, claim=2)
    assert await row() == (MailState.SENDING, 2, "timeout")
    assert await log.claim(message_id, seen=2) == 3
    await log.mark_sent(message_id, "250 ok")
    assert await log.claim(message_id, seen=3) is None
    assert await row() == (MailState.SENT, 3, None)
