"""Where a composed message goes: an SMTP server, or ``.eml`` files on disk.

Both transports take the same :class:`Outgoing` message and call ``before_data``
right before the message content is handed over, which is when the message log
marks it ``sending``: from that moment a crash leaves the outcome unknown, before it
nothing was delivered. Without ``ILS_SMTP__HOST`` the file transport is used, so the
embedded default and ``ils demo`` work offline.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from ils.errors import MailDeliveryError
from ils.files import open_private
from ils.settings import Settings

#: Called once the server has taken the envelope, before the content is sent.
BeforeData = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to go: the envelope, the bytes, and names to file it under.

    Attributes:
        message: The composed message (headers and both parts).
        data: ``message`` as the bytes to transmit (CRLF line ends).
        sender: The envelope sender (MAIL FROM), the configured from-address.
        recipient: The envelope recipient (RCPT TO); one per message.
        message_id: The ``Message-ID`` header, stable across retries.
        file_stem: A stable file name (without ``.eml``) for the file transport.
    """

    message: EmailMessage
    data: bytes
    sender: str
    recipient: str
    message_id: str
    file_stem: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """The transport took the message; ``reply`` is the server's answer or the file."""

    reply: str


class Transport(Protocol):
    """Sends one message at a time; shared by every e-mail job of a process."""

    @property
    def kind(self) -> str:
        """``smtp`` or ``file``, recorded with each message."""
        ...

    async def send(self, mail: Outgoing, before_data: BeforeData) -> Accepted:
        """Deliver ``mail``; raise ``MailDeliveryError`` (retry) or ``MailRefusedError``."""
        ...

    async def close(self) -> None:
        """Release connections (politely: QUIT)."""
        ...


class FileTransport:
    """Writes each message to ``<directory>/<file_stem>.eml`` (mode 0600).

    The name is stable per message and the file is replaced atomically, so a retry
    after a crash rewrites the same file instead of adding a second copy, and a
    reader never sees half a message. Mode 0600 because the files hold order and
    prescription details.
    """

    kind = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, mail: Outgoing, before_data: BeforeData) -> Accepted:
        await before_data()
        try:
            path = await asyncio.to_thread(self._write, mail)
        except OSError as exc:
            # The rename is atomic: a failed write left no message behind.
            raise MailDeliveryError(
                f"writing the message to {self.directory} failed: {exc}"
            ) from None
        # The name only: the reply is shown in the mail log to companies' admins, and the
        # server's directories are not theirs to know (the mail directory is ILS_DATA_DIR/mail).
        return Accepted(f"written to {path.name}")

    def _write(self, mail: Outgoing) -> Path:
        path = self.directory / f"{mail.file_stem}.eml"
        draft = self.directory / f".{mail.file_stem}.{secrets.token_hex(4)}.tmp"
        # A message names patients and orders: 0600 in a 0700 directory, whatever the umask.
        fd = open_private(draft)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(mail.data)
            os.replace(draft, path)
        finally:
            draft.unlink(missing_ok=True)
        return path

    async def close(self) -> None:
        """Nothing is held open between messages."""


def make_transport(settings: Settings, pool_size: int) -> Transport:
    """SMTP when a host is configured, else the file transport under ``data_dir/mail``.

    Args:
        settings: The process's settings (``smtp``, ``data_dir``).
        pool_size: Connections to keep; the e-mail queue's concurrency by default.
    """
    if settings.smtp.configured:
        from ils.workers.email.smtp import SmtpTransport

        return SmtpTransport(settings.smtp, settings.smtp.pool_size or pool_size)
    return FileTransport(settings.mail_dir)
