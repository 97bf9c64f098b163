"""Response bodies of the sent-mail log (``GET /api/mail``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ils.domain.mail import MailState
from ils.web.schemas.common import OutputModel


class MailMessageOut(OutputModel):
    """One e-mail message: to whom, what about, from which job, when, and how it went."""

    id: str
    message_id: str = Field(description="The Message-ID header the recipient got.")
    recipient: str
    subject: str
    state: MailState = Field(
        description="pending, sending (handed over, no answer yet), sent, or failed."
    )
    job_id: str
    queue: str
    job_name: str = Field(description="The e-mail type: order-confirmation, ...")
    company_id: str = Field(description="The company the e-mail speaks for.")
    recipient_company_id: str | None
    transport: str = Field(description="smtp, or file (.eml under the data directory).")
    attempts: int = Field(description="How many times the content was handed over.")
    reply: str | None = Field(description="The mail server's answer, or the file written.")
    error: str | None = Field(description="Why the last try did not deliver.")
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime
