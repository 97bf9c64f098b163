"""A rendered draft as a MIME message, with a Message-ID that survives retries.

The Message-ID is a hash of the job (queue, id, name, payload) and the recipient's
slot: every attempt of a job builds the same one, so the message log finds the row
of an earlier attempt, and a recipient's server that deduplicates by Message-ID
drops a resend. The payload is part of the hash because BullMQ ids are counters: a
Redis that lost its data hands out ``1``, ``2``... again, and a new job must not be
taken for an old one that was already sent.

Messages are 7-bit clean (quoted-printable or base64 bodies, RFC 2047 headers), so
any server takes them without 8BITMIME; only a non-ASCII address needs SMTPUTF8.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email import policy
from email.errors import HeaderParseError, InvalidHeaderDefect
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final

from ils.errors import MailDataMissingError
from ils.settings import SmtpSettings
from ils.workers.email.drafts import MailDraft
from ils.workers.email.render import Body
from ils.workers.email.transport import Outgoing


class ReusedHeaderClasses(HeaderRegistry):
    """The standard header registry, making each header's class once.

    Why: ``HeaderRegistry`` builds a new class (its specialised class mixed with the
    base) for every header it makes, nine a message. A class refers to itself, so
    each one is garbage only the cycle collector frees: in a server sending mail,
    they were the largest share of what its young collections found, and a young
    collection stops the event loop (docs/performance.md). The classes depend only
    on the registry's mapping, which is fixed, so one per specialised class serves
    every message; at most one per entry of the mapping is ever kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[type, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        specialised = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(specialised)
        if made is None:
            made = self._made[specialised] = super().__getitem__(name)
        return made


#: Headers folded at 78 characters with CRLF line ends; bodies kept 7-bit.
SEVEN_BIT: Final = policy.SMTP.clone(cte_type="7bit", header_factory=ReusedHeaderClasses())
#: For a message whose addresses are not ASCII (sent with SMTPUTF8).
UTF8: Final = policy.SMTP.clone(utf8=True, header_factory=ReusedHeaderClasses())


def message_key(queue: str, job_id: str, job_name: str, payload_json: str, slot: str) -> str:
    """32 hex digits identifying one message of one job, the same on every attempt."""
    material = "\x1f".join((queue, job_id, job_name, payload_json, slot))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def message_id_domain(config: SmtpSettings) -> str:
    """The right-hand side of our Message-IDs: configured, else the sender's domain."""
    if config.message_id_domain:
        return config.message_id_domain
    return config.from_address.rpartition("@")[2] or "localhost"


def one_line(text: str) -> str:
    """Whitespace (line breaks included) collapsed: a header value stays one line."""
    return " ".join(text.split())


def _address(addr_spec: str, display_name: str | None, what: str) -> Address:
    try:
        return Address(display_name=one_line(display_name or ""), addr_spec=addr_spec.strip())
    except (HeaderParseError, InvalidHeaderDefect, IndexError, ValueError):
        raise MailDataMissingError(f"the {what} address is not a valid e-mail address") from None


def compose(
    draft: MailDraft,
    body: Body,
    *,
    config: SmtpSettings,
    message_id: str,
    date: datetime,
    file_stem: str,
    job_ref: str,
) -> Outgoing:
    """The message for ``draft`` with both parts, ready for a transport.

    Args:
        draft: Recipient, subject and branding.
        body: The rendered text and HTML parts.
        config: Sender address and name.
        message_id: The stable ``Message-ID`` (with angle brackets).
        date: The ``Date`` header.
        file_stem: The file name the file transport uses.
        job_ref: ``queue/name/id`` of the job, in an ``X-ILS-Job`` header for support.

    Raises:
        MailDataMissingError: the recipient's address cannot be used (permanent).
    """
    recipient = _address(draft.recipient.address, draft.recipient.name, "recipient")
    sender = _address(config.from_address, f"{draft.brand.name} via {config.from_name}", "sender")
    utf8 = not (recipient.addr_spec + sender.addr_spec).isascii()
    message = EmailMessage(policy=UTF8 if utf8 else SEVEN_BIT)
    message["From"] = sender
    message["To"] = recipient
    if draft.reply_to:
        message["Reply-To"] = _address(draft.reply_to, draft.brand.name, "reply-to")
    message["Subject"] = one_line(draft.subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # RFC 3834: out-of-office robots must not answer.
    message["Auto-Submitted"] = "auto-generated"
    message["X-ILS-Job"] = job_ref
    message.set_content(body.text)
    message.add_alternative(body.html, subtype="html")
    return Outgoing(
        message=message,
        data=message.as_bytes(),
        sender=sender.addr_spec,
        recipient=recipient.addr_spec,
        message_id=message_id,
        file_stem=file_stem,
    )
