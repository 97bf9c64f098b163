"""Without ``ILS_SMTP__HOST`` the worker writes ``.eml`` files under ``data_dir/mail``."""

from __future__ import annotations

import email
import stat
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

from sqlalchemy import update

from ils.domain.mail import MailMessage, MailState
from ils.jobs.model import JobState
from ils.jobs.payloads.email import OrderConfirmationEmail
from ils.workers.email.transport import FileTransport
from tests.workers.conftest import EnvFactory
from tests.workers.support import PATIENT_LAST, FakeContext


def read(path: object) -> EmailMessage:
    with open(str(path), "rb") as handle:
        parsed = email.message_from_binary_file(handle, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_every_type_is_written_as_an_eml_file_a_person_can_open(
    make_env: EnvFactory,
) -> None:
    env = await make_env()  # no SMTP settings
    assert isinstance(env.worker.transport, FileTransport)
    net, helpers = env.network, env.system.helpers
    refs = [
        await helpers.queue_order_confirmation_email(net.order.id, net.orderer.id),
        await helpers.queue_shipment_notification_email(net.order.id, net.orderer.id, "AB1", "DPD"),
        await helpers.queue_purchase_order_email(net.purchase_order.id, net.supplier.id),
        await helpers.queue_marketplace_connection_email(
            net.connection.id, net.practice.id, net.lab.id
        ),
        await helpers.queue_general_notification_email(net.orderer.id, "Hello", "Text"),
        await helpers.queue_daily_briefing_email(net.lab_admin.id, net.lab.id, "2026-11-28"),
    ]
    records = await env.run(*refs)
    assert {r.state for r in records} == {JobState.COMPLETED}
    mail_dir = env.system.settings.data_dir / "mail"
    files = sorted(mail_dir.glob("*.eml"))
    assert len(files) == 6
    assert sorted(mail_dir.iterdir()) == files  # no temporary files left behind
    rows = {row.message_id: row for row in await env.messages()}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # order and prescription data
        message = read(path)
        row = rows[message["Message-ID"]]
        assert row.state is MailState.SENT and row.transport == "file"
        assert row.reply == f"written to {path.name}"  # the server's path is not shown
        assert message["To"].addresses[0].addr_spec == row.recipient
        assert message["Subject"] == row.subject
        assert message.get_body(("plain",)) is not None
        assert message.get_body(("html",)) is not None
        assert PATIENT_LAST not in path.read_text()
    confirmation = next(p for p in files if "order-confirmation" in p.name)
    body = read(confirmation).get_body(("plain",))
    assert body is not None and "ORD-2026-000042" in body.get_content()


async def test_a_resend_rewrites_the_same_file(make_env: EnvFactory) -> None:
    env = await make_env()
    payload = OrderConfirmationEmail(order_id=env.network.order.id, user_id=env.network.orderer.id)
    await env.worker.order_confirmation(payload, FakeContext("job-1"))
    await env.worker.order_confirmation(payload, FakeContext("job-1", attempt=2))
    mail_dir = env.system.settings.data_dir / "mail"
    (path,) = mail_dir.iterdir()
    # A crash after the write and before "sent" was recorded: the retry writes again,
    # into the same file, so there is still one copy.
    # The crashed holder's send lease has run out by the time the retry comes (else
    # the retry waits for it, a lease's length in real time).
    crashed_at = datetime.now(UTC) - timedelta(seconds=env.worker.lease_s + 1)
    async with env.sessions() as session, session.begin():
        await session.execute(
            update(MailMessage).values(state=MailState.SENDING, sending_at=crashed_at)
        )
    await env.worker.order_confirmation(payload, FakeContext("job-1", attempt=3))
    assert list(mail_dir.iterdir()) == [path]
    (row,) = await env.messages()
    assert (row.state, row.attempts) == (MailState.SENT, 2)
