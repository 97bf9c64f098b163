"""SMTP delivery with connections kept open across jobs (aiosmtplib).

Opening an SMTP connection costs a TCP handshake, the greeting, EHLO, often a TLS
handshake and AUTH: several round trips before the first message. A worker process
therefore keeps up to ``pool_size`` connections (the e-mail queue's concurrency) and
reuses them job after job. A connection idle longer than ``idle_check_s`` is checked
with NOOP first, one that has carried ``max_messages_per_connection`` messages is
closed with QUIT, and a pooled connection the server dropped in the meantime is
replaced before anything was sent on it, without costing the job an attempt.

The SMTP transaction is driven command by command (MAIL, RCPT, then DATA) rather
than through ``send_message``, so the message log can mark the message ``sending``
exactly when the content is about to go: a refusal of the envelope (no such
mailbox) happens before that mark and is certain not to have delivered anything.

Replies map to the job system's two kinds of failure: a 5xx is permanent
(:class:`~ils.errors.MailRefusedError`, the job fails at once); a 4xx, a dropped
connection or a timeout is retried with back-off
(:class:`~ils.errors.MailDeliveryError`), marked ``unconfirmed`` when it struck
after the content was handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass

import aiosmtplib

from ils.errors import ILSError, MailDeliveryError, MailRefusedError
from ils.settings import SmtpSettings
from ils.workers.email.transport import Accepted, BeforeData, Outgoing

#: Seconds given to QUIT when a connection is retired or the pool closes.
QUIT_TIMEOUT_S = 2.0
#: Longest server reply quoted in a failure reason.
REPLY_QUOTE = 300

logger = logging.getLogger(__name__)


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:REPLY_QUOTE]


def classify(exc: Exception, *, data_started: bool, where: str) -> ILSError:
    """Turn an SMTP or network error into a retryable or a permanent job error.

    Args:
        exc: What aiosmtplib (or the socket) raised.
        data_started: The content had been handed over (DATA issued): without a
            reply the outcome is unknown, and the error says so (``unconfirmed``).
        where: ``host:port`` for the message.
    """
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = {
            aiosmtplib.SMTPRecipientRefused: "recipient refused",
            aiosmtplib.SMTPSenderRefused: "sender refused (check ILS_SMTP__FROM_ADDRESS)",
            aiosmtplib.SMTPDataError: "message refused",
            aiosmtplib.SMTPAuthenticationError: "authentication failed (check ILS_SMTP__USERNAME"
            " and ILS_SMTP__PASSWORD)",
            aiosmtplib.SMTPHeloError: "greeting refused",
        }.get(type(exc), "command refused")
        reply = _reply(exc.code, exc.message)
        if 500 <= exc.code < 600:
            return MailRefusedError(f"{what} by {where}: {reply}", code=exc.code)
        # 4xx, and anything odd, may pass: retry.
        return MailDeliveryError(f"{what} by {where} for now: {reply}", code=exc.code)
    when = " after the message was sent" if data_started else ""
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return MailDeliveryError(f"{where} did not answer in time{when}", unconfirmed=data_started)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError | OSError):
        detail = str(exc).strip() or type(exc).__name__
        return MailDeliveryError(
            f"connection to {where} failed{when}: {detail}", unconfirmed=data_started
        )
    if isinstance(exc, aiosmtplib.SMTPException):
        # Capabilities and configuration (no AUTH offered, SMTPUTF8 missing): a retry
        # meets the same server.
        return MailRefusedError(f"cannot send through {where}: {exc}")
    return MailDeliveryError(f"sending through {where} failed: {type(exc).__name__}: {exc}")


@dataclass(eq=False)
class _Connection:
    """A pooled connection and what the pool needs to know about it."""

    client: aiosmtplib.SMTP
    last_used: float
    sent: int = 0


class SmtpTransport:
    """Sends through one SMTP server, keeping up to ``pool_size`` connections open.

    Attributes:
        connects: Connections opened so far (for tests and ``bench/mail.py``).
    """

    kind = "smtp"

    def __init__(self, config: SmtpSettings, pool_size: int) -> None:
        if config.host is None:
            raise ValueError("SmtpTransport needs ILS_SMTP__HOST")
        self.config = config
        self.where = f"{config.host}:{config.effective_port}"
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Connection] = []
        self._local_hostname: str | None = None
        self._closed = False
        self.connects = 0

    async def send(self, mail: Outgoing, before_data: BeforeData) -> Accepted:
        """Deliver ``mail`` on a pooled connection (see the module docstring)."""
        if self._closed:
            raise MailDeliveryError("the SMTP transport is shut down")
        utf8 = not (mail.sender + mail.recipient).isascii()
        async with self._slots:
            conn, reused = await self._checkout()
            data_started = False

            async def mark() -> None:
                nonlocal data_started
                await before_data()
                data_started = True

            try:
                try:
                    reply = await self._transaction(conn.client, mail, mark, utf8=utf8)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    if not reused or data_started:
                        raise
                    # The server dropped the idle connection: nothing was sent on it.
                    self._discard(conn)
                    conn, _ = await self._checkout(fresh=True)
                    reply = await self._transaction(conn.client, mail, mark, utf8=utf8)
            except aiosmtplib.SMTPResponseException as exc:
                await self._reset_or_discard(conn)
                raise classify(exc, data_started=data_started, where=self.where) from None
            except ILSError:
                await self._reset_or_discard(conn)
                raise
            except Exception as exc:
                self._discard(conn)
                if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
                    raise classify(exc, data_started=data_started, where=self.where) from None
                raise
            except BaseException:
                self._discard(conn)  # cancelled mid-transaction: the session is unusable
                raise
            await self._checkin(conn)
            return Accepted(reply)

    async def _transaction(
        self, client: aiosmtplib.SMTP, mail: Outgoing, before_data: BeforeData, *, utf8: bool
    ) -> str:
        options: list[str] = []
        if utf8:
            if not client.supports_extension("smtputf8"):
                raise MailRefusedError(
                    f"an address is not ASCII and {self.where} does not offer SMTPUTF8"
                )
            options.append("SMTPUTF8")
        if client.supports_extension("size"):
            options.append(f"SIZE={len(mail.data)}")
        encoding = "utf-8" if utf8 else "ascii"
        await client.mail(mail.sender, options=options, encoding=encoding)
        await client.rcpt(mail.recipient, encoding=encoding)
        await before_data()
        response = await client.data(mail.data)
        return _reply(response.code, response.message)

    # -- the pool ----------------------------------------------------------------------

    async def _checkout(self, *, fresh: bool = False) -> tuple[_Connection, bool]:
        """An open connection (a pooled one unless ``fresh``) and whether it was reused."""
        while self._idle and not fresh:
            conn = self._idle.pop()  # the most recently used: the least likely dropped
            if not conn.client.is_connected:
                continue
            if time.monotonic() - conn.last_used >= self.config.idle_check_s:
                try:
                    await conn.client.noop()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    self._discard(conn)
                    continue
            return conn, True
        return await self._connect(), False

    async def _connect(self) -> _Connection:
        config = self.config
        if self._local_hostname is None:
            # socket.getfqdn may wait on DNS: once per process, not per connection.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.effective_port,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            validate_certs=config.validate_certs,
            timeout=config.timeout_s,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except Exception as exc:
            client.close()
            if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
                raise classify(exc, data_started=False, where=self.where) from None
            raise
        self.connects += 1
        return _Connection(client, last_used=time.monotonic())

    async def _checkin(self, conn: _Connection) -> None:
        conn.sent += 1
        conn.last_used = time.monotonic()
        if self._closed or conn.sent >= self.config.max_messages_per_connection:
            await self._quit(conn)
        else:
            self._idle.append(conn)

    async def _reset_or_discard(self, conn: _Connection) -> None:
        """After a refused command the session is fine once RSET clears the envelope."""
        try:
            await conn.client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._discard(conn)
            return
        await self._checkin(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.client.close()

    async def _quit(self, conn: _Connection) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await conn.client.quit(timeout=QUIT_TIMEOUT_S)
        conn.client.close()

    async def _quit_idle(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(conn) for conn in idle))

    async def close(self) -> None:
        """QUIT every idle connection; a message being sent keeps its own until done."""
        self._closed = True
        await self._quit_idle()
