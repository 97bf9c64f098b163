"""The one exception root of ILS and its specific subclasses.

Every error we raise on purpose derives from :class:`ILSError`, so callers (the CLI,
the web layer, the runner) can tell our clear, user-facing failures from bugs. The
messages never carry payload contents: payloads may reference patients, and messages
end up in logs and in the monitoring API.
"""

from __future__ import annotations

from typing import ClassVar


class ILSError(Exception):
    """Root of every error ILS raises deliberately."""


class ConfigurationError(ILSError):
    """Settings that cannot work (unknown queue key, bad URL, eviction policy refused)."""


#: The body of every 403 a role or company-kind rule gives (same text as the web layer's).
NOT_ALLOWED = "not allowed for your role"
#: The body of every 404 for a record: missing and another company's answer alike.
NOT_FOUND = "not found"


class NotFoundError(ILSError):
    """A record that does not exist or belongs to another company (the API's 404).

    The message is always ``not found``: telling "missing" from "someone else's" would
    reveal which records other companies hold. ``what`` names the kind of record for
    the code that catches it, and never reaches the client.
    """

    def __init__(self, what: str = "record") -> None:
        super().__init__(NOT_FOUND)
        self.what = what


class ForbiddenError(ILSError):
    """The user's role or company kind may not do this to a record they can see (403)."""

    def __init__(self, message: str = NOT_ALLOWED) -> None:
        super().__init__(message)


class ConflictError(ILSError):
    """The request clashes with the record's current state or with another record:
    already invoiced, a duplicate reference, a live connection (409). The message says
    which rule, without repeating values the client sent."""


class InvalidFieldError(ILSError):
    """A request field whose value breaks a rule only a lookup can check (a patient of
    another practice, a past due date): 422 in exactly the shape of a schema error, so
    a client need not care where the rule lives.

    ``field`` is dotted for nested fields (``lines.0.product_id``); ``message`` states
    the rule and never repeats the value sent.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RateLimitedError(ILSError):
    """The user asked for more than their share in a time window (429); waiting helps."""


class JobSystemError(ILSError):
    """Root of the job system's errors."""


class UnknownQueueError(JobSystemError):
    """A queue key that is not in the catalogue."""

    def __init__(self, queue: str) -> None:
        super().__init__(f"unknown queue {queue!r}")
        self.queue = queue


class UnknownJobTypeError(JobSystemError):
    """A (queue, job name) pair with no payload model registered."""

    def __init__(self, queue: str, name: str) -> None:
        super().__init__(f"unknown job type {name!r} on queue {queue!r}")
        self.queue = queue
        self.name = name


class InvalidPayloadError(JobSystemError):
    """A payload or helper argument that fails validation; nothing was queued.

    ``problems`` lists ``field: reason`` strings without the offending values, so the
    error is safe to log and to show.
    """

    def __init__(self, queue: str, name: str, problems: list[str]) -> None:
        detail = "; ".join(problems) if problems else "invalid payload"
        super().__init__(f"invalid {queue}/{name} job: {detail}")
        self.queue = queue
        self.name = name
        self.problems = problems


class PayloadTooLargeError(InvalidPayloadError):
    """A payload whose JSON is larger than the configured limit (64 KiB by default)."""

    def __init__(self, queue: str, name: str, size: int, limit: int) -> None:
        super().__init__(queue, name, [f"payload is {size} bytes, the limit is {limit}"])
        self.size = size
        self.limit = limit


class OneJobError(JobSystemError):
    """A failure about one job, which the caller finds again by its queue and id.

    Each subclass only words its message (``template``, formatted with both).
    """

    template: ClassVar[str]

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(self.template.format(queue=queue, job_id=job_id))
        self.queue = queue
        self.job_id = job_id


class JobNotFoundError(OneJobError):
    """A job id that the store does not hold (or no longer holds)."""

    template = "job {job_id!r} not found in queue {queue!r}"


class InvalidJobStateError(JobSystemError):
    """An operation the job's current state does not allow (retry a waiting job...)."""

    def __init__(self, queue: str, job_id: str, state: str, operation: str) -> None:
        super().__init__(f"cannot {operation} job {job_id!r} of queue {queue!r}: it is {state}")
        self.queue = queue
        self.job_id = job_id
        self.state = state
        self.operation = operation


class LockLostError(OneJobError):
    """The worker no longer holds the job's lock (it expired and another took it)."""

    template = "lock lost for job {job_id!r} of queue {queue!r}"


class StoreUnavailableError(JobSystemError):
    """The job store cannot be reached right now (Redis down, database locked).

    ``unsent``: the command certainly never reached the store (the connection was
    refused or never made), so a job add that failed this way is certainly not there.
    Otherwise the store may have carried it out before the failure.
    """

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class JobFailedError(ILSError):
    """Raised by a handler for a failure worth retrying, with a clear reason."""


class PermanentJobError(JobFailedError):
    """Raised by a handler when retrying cannot help: the job fails at once.

    Missing data (order deleted), a refusal that will not change (no such mailbox) or a
    job type without a handler are permanent.
    """


class MailDeliveryError(JobFailedError):
    """A delivery problem that may pass (4xx reply, connection lost, timeout): retried.

    ``code`` is the SMTP reply code when the server gave one. ``unconfirmed`` is true
    when the message content had been handed over (DATA) and no reply came back, so
    whether the server accepted it is unknown.
    """

    def __init__(self, message: str, *, code: int | None = None, unconfirmed: bool = False):
        super().__init__(message)
        self.code = code
        self.unconfirmed = unconfirmed


class MailRefusedError(PermanentJobError):
    """The mail server refused for good (5xx: no such mailbox, sender not allowed...)."""

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        self.code = code


class MailDataMissingError(PermanentJobError):
    """What an e-mail is about, or its recipient, is gone (order deleted, user without
    an e-mail address, no briefing for that day): retrying cannot bring it back."""


class StorageError(JobFailedError):
    """A file could not be written or read (disk full, object store down): a job that
    meets it is retried."""


class StorageChecksumError(StorageError):
    """What was read under a key does not hash to the SHA-256 recorded when it was
    written (a damaged disk, an object changed behind our back): the bytes are never
    handed out. Still retried, since a torn read can heal; a damaged copy fails for
    good after the job's attempts."""
