"""The six e-mails through the real job system to a real SMTP server, and the errors.

Every test queues jobs with the helpers (as the platform does), runs the e-mail
queue with the runner and looks at what the aiosmtpd server on 127.0.0.1 received.
"""

from __future__ import annotations

import re

from ils.domain.companies import Company, Role, User
from ils.domain.mail import MailState
from ils.domain.marketplace import Connection, ConnectionStatus
from ils.jobs.model import JobRef, JobState
from ils.workers.email.smtp import SmtpTransport
from tests.conftest import free_port
from tests.workers.conftest import EnvFactory, MailEnv, smtp_to
from tests.workers.support import (
    HOSTILE,
    PATIENT_BIRTH,
    PATIENT_FIRST,
    PATIENT_LAST,
    Received,
    RunningServer,
    eventually,
    start_mail_server,
)

ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"


def assert_no_patient_data(message: Received) -> None:
    raw = message.part("plain") + message.part("html") + str(message.message)
    for secret in (PATIENT_FIRST, PATIENT_LAST, PATIENT_BIRTH.isoformat(), "14 Mar 1961"):
        assert secret not in raw


def assert_both_parts(message: Received) -> tuple[str, str]:
    assert message.message.get_content_type() == "multipart/alternative"
    text, html = message.part("plain"), message.part("html")
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "<" not in text.replace(HOSTILE, "")  # no markup in the text part but the user's
    return text, html


async def test_every_email_type_arrives_with_recipient_subject_parts_and_content(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    net, helpers = env.network, env.system.helpers
    refs = [
        await helpers.queue_order_confirmation_email(net.order.id, net.orderer.id),
        await helpers.queue_shipment_notification_email(
            net.order.id, net.orderer.id, "1Z 999/AA1", "UPS"
        ),
        await helpers.queue_purchase_order_email(net.purchase_order.id, net.supplier.id),
        await helpers.queue_marketplace_connection_email(
            net.connection.id, net.practice.id, net.lab.id
        ),
        await helpers.queue_general_notification_email(
            net.orderer.id, "Lab closed on Friday", f"Dear all,\n\n{HOSTILE}\nSee you Monday."
        ),
        await helpers.queue_daily_briefing_email(net.lab_admin.id, net.lab.id, "2026-11-28"),
    ]
    records = await env.run(*refs)
    assert [r.state for r in records] == [JobState.COMPLETED] * 6, [
        r.failed_reason for r in records
    ]
    server = mail_server.handler
    assert len(server.messages()) == 6
    for message in server.messages():
        assert message.mail_from == "no-reply@localhost"
        assert_both_parts(message)
        assert message.message["Auto-Submitted"] == "auto-generated"

    confirmation, shipment, greeting = server.to("ann@brightside.example")
    assert confirmation.message["Subject"] == "Order ORD-2026-000042 received by Clear View Lab"
    assert confirmation.message["From"] == "Clear View Lab via ILS <no-reply@localhost>"
    assert confirmation.message["Reply-To"] == "Clear View Lab <orders@clearview.example>"
    text, html = assert_both_parts(confirmation)
    for part in (text, html):
        assert "ORD-2026-000042" in part
        assert "Submitted" in part
        assert "Progressive Polycarbonate index 1.60 lenses" in part
        assert "Ray-Ban RB5154" in part
        assert "-2.25" in part and "-0.75" in part and "180°" in part and "+2.00" in part
        assert "1.00Δ base in" in part
        assert "P-0042" in part  # the practice's own reference: it holds the patient
        assert f"http://127.0.0.1:8000/orders/{net.order.id}" in part
    assert "#0a7c59" in html and "CLEAR VIEW" in html  # the lab's branding
    assert_no_patient_data(confirmation)

    assert shipment.message["Subject"] == "Order ORD-2026-000042 has shipped from Clear View Lab"
    text, html = assert_both_parts(shipment)
    assert "1Z 999/AA1" in text
    assert "https://www.ups.com/track?tracknum=1Z%20999%2FAA1" in text
    assert 'href="https://www.ups.com/track?tracknum=1Z%20999%2FAA1"' in html
    assert_no_patient_data(shipment)

    assert greeting.message["Subject"] == "Lab closed on Friday"
    text, html = assert_both_parts(greeting)
    assert HOSTILE in text
    assert f"<p>Dear all,</p>\n<p>{ESCAPED}<br>\nSee you Monday.</p>" in html
    assert "Brightside Opticians" in html  # the user's own company brands it

    (po,) = server.to("sales@lenssupply.example")
    assert po.message["Subject"] == "Purchase order PO-2026-00007 from Clear View Lab"
    text, html = assert_both_parts(po)
    assert "40 x LB-160-PC 1.60 polycarbonate blank @ 12.50 = 500.00" in text
    assert "1 Lens Street" in text and "Expected by:    2 Dec 2026" in text
    assert f"/purchase-orders/{net.purchase_order.id}" in html
    assert_no_patient_data(po)

    connection, briefing = server.to("orders@clearview.example") + server.to(
        "boss@clearview.example"
    )
    assert connection.message["Subject"] == (
        "Brightside Opticians would like to connect with Clear View Lab"
    )
    text, html = assert_both_parts(connection)
    assert HOSTILE in text
    assert ESCAPED in html and "<script>" not in html
    assert "/marketplace/connections" in html
    assert_no_patient_data(connection)

    assert briefing.message["Subject"] == "Daily briefing for Clear View Lab, 28 Nov 2026"
    text, html = assert_both_parts(briefing)
    assert "Orders are up 12% on last week." in text
    assert "Orders received: 41" in text
    assert "- Reorder 1.60 blanks" in text
    assert ESCAPED in html and "<script>" not in html  # the AI's text is escaped too

    # Each message is in the log as sent, under the Message-ID the recipient got.
    rows = await env.messages()
    assert sorted(row.message_id for row in rows) == sorted(
        m.message["Message-ID"] for m in server.messages()
    )
    assert {row.state for row in rows} == {MailState.SENT}
    assert all(row.attempts == 1 and row.sent_at and row.reply for row in rows)
    for ref, record in zip(refs, records, strict=True):
        (logged,) = [row for row in rows if row.job_id == ref.job_id]
        assert record.result["messages"] == [{"messageId": logged.message_id, "state": "sent"}]


async def test_a_4xx_then_accept_delivers_exactly_one_copy(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    mail_server.handler.data_replies.append("451 4.3.0 Mailbox busy, try again later")
    ref = await env.system.helpers.queue_order_confirmation_email(
        env.network.order.id, env.network.orderer.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.COMPLETED
    assert record.attempts_made == 2
    assert mail_server.handler.data_commands == 2
    assert len(mail_server.handler.messages()) == 1
    (row,) = await env.messages()
    assert row.state is MailState.SENT
    assert row.attempts == 2  # DATA was started twice, accepted once


async def test_a_5xx_fails_the_job_at_once_without_retries(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    mail_server.handler.refused["ann@brightside.example"] = "550 5.1.1 No such user here"
    ref = await env.system.helpers.queue_order_confirmation_email(
        env.network.order.id, env.network.orderer.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.FAILED
    assert record.attempts_made == 1
    assert record.failed_reason is not None
    assert "recipient refused" in record.failed_reason
    assert "550 5.1.1 No such user here" in record.failed_reason
    assert mail_server.handler.data_commands == 0
    (row,) = await env.messages()
    assert row.state is MailState.FAILED
    assert row.attempts == 0  # refused at RCPT: the content never went
    assert row.error is not None and "550" in row.error


async def test_a_5xx_to_the_content_fails_at_once(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    mail_server.handler.data_replies.append("554 5.7.1 Message rejected as spam")
    ref = await env.system.helpers.queue_purchase_order_email(
        env.network.purchase_order.id, env.network.supplier.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.FAILED
    assert record.attempts_made == 1
    assert "554 5.7.1" in (record.failed_reason or "")
    (row,) = await env.messages()
    assert row.state is MailState.FAILED and row.attempts == 1


async def test_missing_data_fails_at_once_with_a_clear_reason(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    net, helpers = env.network, env.system.helpers
    async with env.sessions() as session, session.begin():
        user = await session.get(User, net.lab_admin.id)
        assert user is not None
        user.is_active = False
    refs = [
        await helpers.queue_order_confirmation_email("no-such-order", net.orderer.id),
        await helpers.queue_general_notification_email("no-such-user", "Hi", "Text"),
        await helpers.queue_daily_briefing_email(net.lab_admin.id, net.lab.id, "2026-11-28"),
        await helpers.queue_daily_briefing_email(net.orderer.id, net.practice.id, "2026-11-28"),
        await helpers.queue_purchase_order_email(net.purchase_order.id, net.lab.id),
    ]
    records = await env.run(*refs)
    assert [r.state for r in records] == [JobState.FAILED] * 5
    assert [r.attempts_made for r in records] == [1] * 5
    assert [r.failed_reason for r in records] == [
        "order no-such-order not found",
        "user no-such-user not found",
        f"user {net.lab_admin.id} is deactivated",
        f"no daily briefing of company {net.practice.id} for 2026-11-28",
        f"purchase order {net.purchase_order.id} is not addressed to supplier {net.lab.id}",
    ]
    assert mail_server.handler.messages() == []
    assert await env.messages() == []


async def notes(env: MailEnv, count: int) -> list[JobRef]:
    """``count`` general-notification e-mails to the practice user."""
    helpers, user_id = env.system.helpers, env.network.orderer.id
    return [
        await helpers.queue_general_notification_email(user_id, f"Note {i}", "Text")
        for i in range(count)
    ]


def connects(env: MailEnv) -> int:
    transport = env.worker.transport
    assert isinstance(transport, SmtpTransport)
    return transport.connects


async def test_connections_are_reused_across_jobs(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server), email_queue={"concurrency": 1})
    records = await env.run(*await notes(env, 6))
    assert {r.state for r in records} == {JobState.COMPLETED}
    assert len({m.peer_port for m in mail_server.handler.messages()}) == 1
    assert connects(env) == 1
    assert mail_server.handler.noops == 0  # used within idle_check_s: no check needed
    await env.worker.close()
    await eventually(lambda: mail_server.handler.quits == 1)  # closed politely


async def test_a_connection_the_server_dropped_is_replaced_without_costing_an_attempt(
    make_env: EnvFactory,
) -> None:
    # A server that hangs up on clients idle for 0.3 s (real ones do after minutes).
    server = start_mail_server(timeout=0.3)
    try:
        env = await make_env(
            smtp=smtp_to(server, idle_check_s=3600), email_queue={"concurrency": 1}
        )
        (first,) = await env.run(*await notes(env, 1))
        assert first.state is JobState.COMPLETED
        transport = env.worker.transport
        assert isinstance(transport, SmtpTransport)
        pooled = transport._idle[0]
        await eventually(lambda: not pooled.client.is_connected)  # the server hung up
        (second,) = await env.run(*await notes(env, 1))
        assert second.state is JobState.COMPLETED
        assert second.attempts_made == 1
        assert len(server.handler.messages()) == 2
        assert len({m.peer_port for m in server.handler.messages()}) == 2
    finally:
        server.controller.stop()


async def test_idle_connections_are_checked_with_noop_before_reuse(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server, idle_check_s=0), email_queue={"concurrency": 1})
    assert {r.state for r in await env.run(*await notes(env, 3))} == {JobState.COMPLETED}
    assert connects(env) == 1
    assert mail_server.handler.noops == 2  # before the second and the third message


async def test_a_connection_is_renewed_after_its_message_allowance(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(
        smtp=smtp_to(mail_server, max_messages_per_connection=2), email_queue={"concurrency": 1}
    )
    assert {r.state for r in await env.run(*await notes(env, 5))} == {JobState.COMPLETED}
    assert len({m.peer_port for m in mail_server.handler.messages()}) == 3
    assert mail_server.handler.quits == 2  # the two full connections were closed with QUIT


async def test_an_unreachable_server_is_retried_then_fails_with_the_reason(
    make_env: EnvFactory,
) -> None:
    env = await make_env(smtp={"host": "127.0.0.1", "port": free_port(), "security": "none"})
    ref = await env.system.helpers.queue_order_confirmation_email(
        env.network.order.id, env.network.orderer.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.FAILED
    assert record.attempts_made == 3  # the job type's attempts: it was retried
    assert re.match(r"connection to 127\.0\.0\.1:\d+ failed", record.failed_reason or "")
    (row,) = await env.messages()
    assert row.state is MailState.PENDING  # nothing was ever handed over


async def test_a_company_without_an_address_is_mailed_at_each_admin(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    net = env.network
    async with env.sessions() as session, session.begin():
        supplier = await session.get(Company, net.supplier.id)
        assert supplier is not None
        supplier.email = None
        session.add_all(
            [
                User(company_id=supplier.id, email="a@supply.example", name="A",
                     password_hash="x", role=Role.ADMIN),
                User(company_id=supplier.id, email="b@supply.example", name="B",
                     password_hash="x", role=Role.COMPANY_ADMIN),
                User(company_id=supplier.id, email="c@supply.example", name="C",
                     password_hash="x", role=Role.STAFF),
            ]
        )  # fmt: skip
    mail_server.handler.refused["b@supply.example"] = "550 5.1.1 No such user"
    ref = await env.system.helpers.queue_purchase_order_email(
        net.purchase_order.id, net.supplier.id
    )
    (record,) = await env.run(ref)
    # A got it; B's mailbox does not exist: the job fails at once, and a retry would
    # not send A a second copy.
    assert (record.state, record.attempts_made) == (JobState.FAILED, 1)
    assert "550 5.1.1 No such user" in (record.failed_reason or "")
    assert [m.rcpt_tos for m in mail_server.handler.messages()] == [["a@supply.example"]]
    rows = {row.recipient: row for row in await env.messages()}
    assert rows["a@supply.example"].state is MailState.SENT
    assert rows["b@supply.example"].state is MailState.FAILED
    assert "c@supply.example" not in rows  # staff are not written to for the company


async def test_a_connection_decided_before_its_email_went_is_not_mailed(
    make_env: EnvFactory, mail_server: RunningServer
) -> None:
    env = await make_env(smtp=smtp_to(mail_server))
    net = env.network
    async with env.sessions() as session, session.begin():
        connection = await session.get(Connection, net.connection.id)
        assert connection is not None
        connection.status = ConnectionStatus.ACCEPTED
    ref = await env.system.helpers.queue_marketplace_connection_email(
        net.connection.id, net.practice.id, net.lab.id
    )
    (record,) = await env.run(ref)
    assert record.state is JobState.COMPLETED
    assert record.result == {
        "messages": [],
        "skipped": f"connection {net.connection.id} was accepted already",
    }
    assert mail_server.handler.messages() == []
