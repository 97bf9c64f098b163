"""Exactly once as the recipient sees it: the message log on SQLite and PostgreSQL.

A retried job must not send a message the server already accepted; the Message-ID is
the same on every attempt; the one unknowable case (the server's reply to DATA is
lost) is resent under the same Message-ID, as the policy in ``handlers.py`` says.
"""

from __future__ import annotations

import asyncio

import pytest

from ils.domain.mail import MailState
from ils.errors import MailDeliveryError
from ils.jobs.model import JobState
from ils.jobs.payloads.email import GeneralNotificationEmail, OrderConfirmationEmail
from ils.workers.email.compose import message_key
from ils.workers.email.log import NewMessage
from tests.workers.conftest import EnvFactory, MailEnv, smtp_to
from tests.workers.support import FakeContext, RunningServer, start_mail_server

pytestmark = pytest.mark.parametrize("database", ["sqlite", "postgres"])


async def env_on(make_env: EnvFactory, database: str, server: RunningServer) -> MailEnv:
    return await make_env(database=database, smtp=smtp_to(server))


def confirmation(env: MailEnv) -> OrderConfirmationEmail:
    return OrderConfirmationEmail(order_id=env.network.order.id, user_id=env.network.orderer.id)


async def test_a_retry_after_the_server_accepted_sends_no_second_copy(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    env = await env_on(make_env, database, mail_server)
    first = await env.worker.order_confirmation(confirmation(env), FakeContext("job-1"))
    retry = FakeContext("job-1", attempt=2)
    again = await env.worker.order_confirmation(confirmation(env), retry)
    (sent,) = first["messages"]
    assert sent["state"] == "sent"
    assert again["messages"] == [{"messageId": sent["messageId"], "state": "already-sent"}]
    assert "was sent by an earlier attempt: not sent again" in retry.lines[0]
    (message,) = mail_server.handler.messages()
    assert message.message["Message-ID"] == sent["messageId"]
    (row,) = await env.messages()
    assert (row.state, row.attempts, row.job_id, row.queue) == (MailState.SENT, 1, "job-1", "email")
    assert row.company_id == env.network.lab.id
    assert row.recipient_company_id == env.network.practice.id


async def test_the_message_id_is_stable_per_job_and_recipient(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    env = await env_on(make_env, database, mail_server)
    payload = confirmation(env)
    await env.worker.order_confirmation(payload, FakeContext("job-a"))
    await env.worker.order_confirmation(payload, FakeContext("job-b"))
    # A reused job id (a Redis that lost its data counts from 1 again) with another
    # payload is another message, not one "already sent".
    other = GeneralNotificationEmail(user_id=env.network.orderer.id, subject="Hi", content="x")
    await env.worker.general_notification(other, FakeContext("job-a"))
    ids = [m.message["Message-ID"] for m in mail_server.handler.messages()]
    assert len(set(ids)) == 3
    key = message_key(
        "email",
        "job-a",
        "order-confirmation",
        payload.model_dump_json(by_alias=True),
        f"user:{env.network.orderer.id}",
    )
    assert ids[0] == f"<{key}@localhost>"


async def test_a_lost_reply_to_data_is_resent_under_the_same_message_id(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    """The one window no protocol closes: the server stored the message and hung up
    before its 250 arrived. The row says ``sending``; the retry sends again with the
    same Message-ID (a duplicate the recipient's server and client can recognise)."""
    env = await env_on(make_env, database, mail_server)
    mail_server.handler.hang_up_after_data = 1
    ref = await env.system.helpers.queue_order_confirmation_email(
        env.network.order.id, env.network.orderer.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.COMPLETED
    assert record.attempts_made == 2
    first, second = mail_server.handler.messages()
    assert first.message["Message-ID"] == second.message["Message-ID"]
    (row,) = await env.messages()
    assert (row.state, row.attempts) == (MailState.SENT, 2)


async def test_an_unconfirmed_send_leaves_the_row_sending(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    env = await env_on(make_env, database, mail_server)
    mail_server.handler.hang_up_after_data = 1
    with pytest.raises(MailDeliveryError) as caught:
        await env.worker.order_confirmation(confirmation(env), FakeContext("job-1"))
    assert caught.value.unconfirmed
    assert "after the message was sent" in str(caught.value)
    (row,) = await env.messages()
    assert (row.state, row.attempts) == (MailState.SENDING, 1)
    assert row.error is not None


async def test_a_failed_message_is_tried_again_on_a_manual_retry(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    env = await env_on(make_env, database, mail_server)
    mail_server.handler.refused["ann@brightside.example"] = "550 5.1.1 No such user"
    ref = await env.system.helpers.queue_order_confirmation_email(
        env.network.order.id, env.network.orderer.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.FAILED
    mail_server.handler.refused.clear()  # the mailbox was created
    await env.system.local.retry_job("email", ref.job_id)
    (record,) = await env.run(ref)
    assert record.state is JobState.COMPLETED
    assert len(mail_server.handler.messages()) == 1
    (row,) = await env.messages()
    assert row.state is MailState.SENT and row.error is None


async def test_an_address_edited_between_attempts_gets_the_message_under_the_same_id(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    env = await env_on(make_env, database, mail_server)
    mail_server.handler.refused["ann@brightside.example"] = "450 4.2.1 Mailbox busy"
    with pytest.raises(MailDeliveryError):
        await env.worker.order_confirmation(confirmation(env), FakeContext("job-1"))
    async with env.sessions() as session, session.begin():
        user = await session.get(type(env.network.orderer), env.network.orderer.id)
        assert user is not None
        user.email = "ann.new@brightside.example"
    result = await env.worker.order_confirmation(confirmation(env), FakeContext("job-1"))
    (message,) = mail_server.handler.messages()
    assert message.rcpt_tos == ["ann.new@brightside.example"]
    assert message.message["Message-ID"] == result["messages"][0]["messageId"]
    (row,) = await env.messages()
    assert (row.recipient, row.state) == ("ann.new@brightside.example", MailState.SENT)


async def test_two_workers_opening_one_message_share_one_row(
    make_env: EnvFactory, database: str, mail_server: RunningServer
) -> None:
    env = await env_on(make_env, database, mail_server)
    new = NewMessage(
        message_id="<same@localhost>",
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
    opened = await asyncio.gather(*(env.worker.log.open(new) for _ in range(5)))
    assert {o.state for o in opened} == {MailState.PENDING}
    assert len(await env.messages()) == 1


async def test_a_failed_reconnect_keeps_an_unknown_outcome_visible(
    make_env: EnvFactory, database: str
) -> None:
    server = start_mail_server()
    env = await make_env(database=database, smtp=smtp_to(server))
    server.handler.hang_up_after_data = 1
    with pytest.raises(MailDeliveryError):
        await env.worker.order_confirmation(confirmation(env), FakeContext("job-1"))
    server.controller.stop()  # the retry cannot even connect
    with pytest.raises(MailDeliveryError, match="connection to"):
        await env.worker.order_confirmation(confirmation(env), FakeContext("job-1"))
    (row,) = await env.messages()
    assert (row.state, row.attempts) == (MailState.SENDING, 1)  # still unknown, not "pending"
    assert row.error is not None and row.error.startswith("connection to")
