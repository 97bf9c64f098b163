"""The e-mail job handlers: draft, check the log, render, send, record.

One :class:`EmailWorker` per process serves all six job types; it owns the transport
(the SMTP connection pool) so connections outlive single jobs.

For each message of a job:

1. open its row in the message log (``pending`` on the first attempt);
2. a row already ``sent`` is not sent again: the retry completes without a copy;
3. otherwise render, compose with the job's stable Message-ID, and send; the row
   turns ``sending`` just before the content goes and ``sent`` on the server's 250.

The exactly-once policy for the one window no protocol closes (the process dies, or
the connection drops, after the content went out and before ``sent`` is recorded):
the row stays ``sending`` and the retry sends the message again, with the same
Message-ID. We prefer a possible duplicate that receiving servers and mail clients
can recognise (same Message-ID) to an order confirmation or purchase order that is
silently never delivered. The window is the server's reply to DATA plus one commit;
a crash anywhere else (before the content, or after ``sent`` was recorded and before
the job completed) yields exactly one copy.

One job can also run twice at once (the same job id in two stores, or a worker that
lost its lock and still runs). Both copies open the same row, and only the one whose
claim of the row's send lease succeeds sends (``MessageLog.claim``, a compare-and-set
just before DATA). The other sends nothing and marks nothing: it waits until the
holder's outcome is recorded and returns ``already-sent`` (fails for good when the
holder was refused for good), or, when the holder gave up for now (the row is free
again) or its lease ran out (it died mid-send), sends itself under the same
Message-ID, as a retry would. The lease outlasts the longest a live holder can take
from claim to recorded outcome (``send_lease_s``), so only a dead holder loses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from ils.clock import Clock
from ils.domain.mail import MailState
from ils.errors import ILSError, MailDeliveryError, MailRefusedError, PermanentJobError
from ils.jobs.registry import JobContext
from ils.settings import Settings, SmtpSettings
from ils.workers.email.compose import compose, message_id_domain, message_key
from ils.workers.email.content import Builder, Built, ContentBuilder, EmailJobT
from ils.workers.email.drafts import MailDraft, Skip
from ils.workers.email.links import PlatformLinks
from ils.workers.email.log import LoggedMessage, MailDatabase, MessageLog, NewMessage
from ils.workers.email.render import Renderer
from ils.workers.email.transport import Transport

#: Pauses before trying again to record a message the server accepted. Giving up
#: there means resending on the retry, so a database hiccup gets a few seconds.
RECORD_SENT_RETRIES_S: Final = (0.2, 1.0, 3.0)
#: What a send lease allows beyond the two SMTP replies its holder may wait for
#: after the claim (to DATA, then to the content): recording the outcome, with the
#: pauses of ``RECORD_SENT_RETRIES_S``, and a database that is slow to answer.
SEND_LEASE_MARGIN_S: Final = 30.0
#: How often an attempt waiting on another one's send looks at the row again. Waiting
#: in the handler (not by failing the attempt) keeps the job's attempts for real
#: failures: a retry spent while a lease lasts could use up the job's last attempt.
LEASE_POLL_S: Final = 0.25
#: Claims one attempt may lose (each time after waiting for the winner) before it
#: gives up for now and is retried with back-off.
CLAIM_ROUNDS: Final = 3

logger = logging.getLogger(__name__)


def send_lease_s(smtp: SmtpSettings) -> float:
    """Seconds a claim keeps other attempts from sending the same message.

    Longer than a live holder can take from its claim to its recorded outcome: up to
    ``timeout_s`` for the reply to DATA and as long for the reply to the content, then
    ``SEND_LEASE_MARGIN_S`` to record it (90 s with the default 30 s timeout). A
    shorter lease would let a slow but live holder be taken over (two copies).
    """
    return 2 * smtp.timeout_s + SEND_LEASE_MARGIN_S


class MessageBusyError(MailDeliveryError):
    """Another attempt of the job holds the message's send lease, so this one sent
    nothing. Retried like any delivery problem, and never recorded on the row: the
    retry finds the message sent, or the holder gone and the message free to send."""


def _sends(
    build: Callable[[ContentBuilder, AsyncSession, EmailJobT], Awaitable[Built]],
) -> Callable[[EmailWorker, EmailJobT, JobContext], Awaitable[dict[str, Any]]]:
    """The handler of one e-mail job type: :meth:`EmailWorker.run` with that type's
    :class:`ContentBuilder` method, the one thing the six handlers differ in."""

    async def handler(worker: EmailWorker, payload: EmailJobT, ctx: JobContext) -> dict[str, Any]:
        return await worker.run(payload, ctx, partial(build, worker.content))

    return handler


class EmailWorker:
    """Sends the e-mails of the ``email`` queue for one process."""

    def __init__(
        self,
        settings: Settings,
        db: MailDatabase,
        transport: Transport,
        clock: Clock,
        *,
        renderer: Renderer | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.lease_s = send_lease_s(settings.smtp)
        self.log = MessageLog(db, clock, lease_s=self.lease_s)
        self.transport = transport
        self.clock = clock
        self.renderer = renderer or Renderer()
        self.content = ContentBuilder(PlatformLinks(settings.public_url))
        self.domain = message_id_domain(settings.smtp)

    async def close(self) -> None:
        """Release the transport's connections."""
        await self.transport.close()

    # -- the six handlers: each drafts with its own builder, then :meth:`run` sends ------

    order_confirmation = _sends(ContentBuilder.order_confirmation)
    order_shipment = _sends(ContentBuilder.order_shipment)
    purchase_order = _sends(ContentBuilder.purchase_order)
    marketplace_connection = _sends(ContentBuilder.marketplace_connection)
    general_notification = _sends(ContentBuilder.general_notification)
    daily_briefing = _sends(ContentBuilder.daily_briefing)

    async def run(
        self, payload: EmailJobT, ctx: JobContext, build: Builder[EmailJobT]
    ) -> dict[str, Any]:
        """Send every message of one job; the result lists their Message-IDs and states.

        ``build`` drafts the messages from ``payload``; the job name in each message's
        key is the payload's ``type``, which the catalogue keeps equal to the name.

        Raises:
            MailDataMissingError: a record or recipient is gone (permanent).
            MailRefusedError: the server refused a message for good (permanent).
            PermanentJobError: several messages of the job failed for good.
            MailDeliveryError: a message could not go this time (retried).
        """
        name: str = payload.type
        async with self.db.read() as session:
            built = await build(session, payload)
        if isinstance(built, Skip):
            await ctx.log(f"nothing sent: {built.reason}")
            return {"messages": [], "skipped": built.reason}
        payload_json = payload.model_dump_json(by_alias=True)
        results: list[dict[str, str]] = []
        errors: list[ILSError] = []
        for draft in built:
            try:
                results.append(await self._deliver(name, payload_json, draft, ctx))
            except (PermanentJobError, MailDeliveryError) as exc:
                # The other recipients of the job still get theirs.
                errors.append(exc)
        transient = [exc for exc in errors if isinstance(exc, MailDeliveryError)]
        if transient:
            raise transient[0]  # a retry skips the messages sent now
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise PermanentJobError("; ".join(str(exc) for exc in errors))
        return {"messages": results, "transport": self.transport.kind}

    async def _deliver(
        self, name: str, payload_json: str, draft: MailDraft, ctx: JobContext
    ) -> dict[str, str]:
        key = message_key(ctx.queue, ctx.job_id, name, payload_json, draft.recipient.slot)
        message_id = f"<{key}@{self.domain}>"
        logged: LoggedMessage | None = await self.log.open(
            NewMessage(
                message_id=message_id,
                job_id=ctx.job_id,
                queue=ctx.queue,
                job_name=name,
                slot=draft.recipient.slot,
                company_id=draft.company_id,
                recipient_company_id=draft.recipient.company_id,
                recipient=draft.recipient.address,
                subject=draft.subject,
                transport=self.transport.kind,
            )
        )
        contested = False  # another attempt held the row since we opened it
        for _ in range(CLAIM_ROUNDS):
            if logged is not None and logged.leased:
                contested = True
                logged = await self._wait_for_holder(message_id, ctx)
            if logged is None:
                break  # the row went (purged): a retry opens it again
            if logged.state is MailState.SENT:
                await ctx.log(f"{message_id} was sent by an earlier attempt: not sent again")
                return {"messageId": message_id, "state": "already-sent"}
            if contested and logged.state is MailState.FAILED:
                # The holder was refused for good; sending again would be refused too.
                raise MailRefusedError(f"{message_id} was refused while another attempt sent it")
            try:
                return await self._send(name, draft, key, message_id, logged, ctx)
            except MessageBusyError:
                # Another copy claimed the row between our open and our DATA.
                contested = True
                logged = await self.log.look(message_id)
        raise MessageBusyError(f"{message_id} is being sent by another attempt of this job")

    async def _wait_for_holder(self, message_id: str, ctx: JobContext) -> LoggedMessage | None:
        """The row once no other attempt holds its lease (sent, given up, or expired).

        Bounded by the lease in real time too, so a holder's clock far ahead of ours
        costs this attempt a retry rather than a slot for ever.
        """
        await ctx.log(f"{message_id} is being sent by another attempt of this job; waiting")
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.lease_s
        while loop.time() < give_up:
            await asyncio.sleep(LEASE_POLL_S)
            logged = await self.log.look(message_id)
            if logged is None or not logged.leased:
                return logged
        raise MessageBusyError(f"{message_id} is still being sent by another attempt")

    async def _send(
        self,
        name: str,
        draft: MailDraft,
        key: str,
        message_id: str,
        logged: LoggedMessage,
        ctx: JobContext,
    ) -> dict[str, str]:
        """Render and send one message whose row nobody holds; the claim comes just
        before DATA (``MessageBusyError`` when another attempt got it first)."""
        if logged.state is MailState.SENDING:
            logger.warning(
                "job %s: message %s was being sent when an earlier attempt stopped; whether "
                "the server took it is unknown, so it is sent again with the same Message-ID",
                ctx.job_id,
                message_id,
            )
            await ctx.log(f"{message_id}: outcome of an earlier send unknown; sending again")
        context = {
            **draft.context,
            "brand": draft.brand,
            "platform": {"name": self.settings.smtp.from_name, "url": self.settings.public_url},
            "recipient_name": draft.recipient.name,
            "subject": draft.subject,
        }
        body = self.renderer.render(draft.template, context)
        claim: int | None = None

        async def before_data() -> None:
            nonlocal claim
            claim = await self.log.claim(message_id, seen=logged.attempts)
            if claim is None:
                raise MessageBusyError(f"{message_id} was claimed by another attempt")

        try:
            mail = compose(
                draft,
                body,
                config=self.settings.smtp,
                message_id=message_id,
                date=datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC),
                file_stem=f"{logged.created_at:%Y%m%d-%H%M%S}-{name}-{key[:12]}",
                job_ref=f"{ctx.queue}/{name}/{ctx.job_id}",
            )
            accepted = await self.transport.send(mail, before_data)
        except PermanentJobError as exc:
            await self.log.mark_failed(message_id, str(exc), claim=claim)
            raise
        except MessageBusyError:
            raise  # nothing sent and the row is the holder's: nothing to record
        except MailDeliveryError as exc:
            # Unknown outcome: stays "sending". Refused with a 4xx after DATA: "pending".
            # Failed before this attempt handed anything over: the row keeps its state
            # (an earlier attempt's unknown outcome stays visible).
            handed_over = claim is not None
            state = (
                MailState.SENDING if exc.unconfirmed else MailState.PENDING if handed_over else None
            )
            await self.log.mark_deferred(message_id, str(exc), state=state, claim=claim)
            raise
        await self._record_sent(message_id, accepted.reply)
        logger.info("job %s: %s sent (%s)", ctx.job_id, message_id, self.transport.kind)
        return {"messageId": message_id, "state": "sent"}

    async def _record_sent(self, message_id: str, reply: str) -> None:
        for pause in (*RECORD_SENT_RETRIES_S, None):
            try:
                await self.log.mark_sent(message_id, reply)
                return
            except (SQLAlchemyError, ILSError):
                if pause is None:
                    raise
                logger.warning("recording %s as sent failed; trying again", message_id)
                await asyncio.sleep(pause)
