"""A real SMTP server that records every message, for counting deliveries and duplicates.

It mirrors ``tests/workers/support.py`` (an aiosmtpd ``Controller``, which runs the
server on an event loop in a thread of its own, so a busy test loop does not slow it)
but keeps only what fault scenarios ask: how many times each message arrived.

Usage::

    with SmtpRecorder() as smtp:                      # listening on 127.0.0.1:smtp.port
        settings = {"host": smtp.host, "port": smtp.port, "security": "none"}
        ...
        await smtp.wait_for_count(3)
        assert smtp.duplicates() == {}                # Message-ID -> times, when > 1
        smtp.by_job()["email/order_confirmation/42"]  # messages per X-ILS-Job header

Messages are keyed by their ``Message-ID`` header (the e-mail worker derives it from
the job and recipient, stable across retries) and by the ``X-ILS-Job`` header
(``queue/name/id`` of the job that sent it). A message without one of them counts
under ``""``.

Faults of the server itself (set at any time, thread-safe):

* ``data_replies``: replies handed out to the next DATA commands instead of storing
  the message (``["451 4.3.0 Try again"]`` = one temporary failure, then normal).
* ``hang_up_after_data``: store the next N messages, then close the connection
  without replying: the sender cannot know that the message arrived (the
  ambiguous case that yields duplicates on retry).
* ``data_delay_s``: wait this long before replying to DATA (the message is stored
  first), to run into the client's timeout.

Put a :class:`~tests.faults.proxy.FaultProxy` in front (``FaultProxy(smtp.url)``) for
network faults between the worker and this server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

from tests.conftest import free_port

__all__ = ["RecordedMessage", "SmtpRecorder"]

_headers = BytesHeaderParser()


@dataclass(frozen=True)
class RecordedMessage:
    """One message the server accepted (``250`` to DATA, or stored then hung up on)."""

    message_id: str
    job: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    peer_port: int
    received_at: float  # time.monotonic()


class _Handler:
    """The aiosmtpd hooks; they run on the controller's thread."""

    def __init__(self, recorder: SmtpRecorder) -> None:
        self.recorder = recorder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        recorder = self.recorder
        with recorder._lock:
            recorder._data_commands += 1
            if recorder.data_replies:
                return recorder.data_replies.pop(0)
            raw = bytes(envelope.original_content or envelope.content or b"")
            headers = _headers.parsebytes(raw)
            recorder._messages.append(
                RecordedMessage(
                    message_id=str(headers.get("Message-ID", "")).strip(),
                    job=str(headers.get("X-ILS-Job", "")).strip(),
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    raw=raw,
                    peer_port=int(session.peer[1]),
                    received_at=time.monotonic(),
                )
            )
            hang_up = recorder.hang_up_after_data > 0
            if hang_up:
                recorder.hang_up_after_data -= 1
            delay = recorder.data_delay_s
        if hang_up:
            server.transport.close()
            return "250 2.0.0 Ok: queued"  # never reaches the client
        if delay > 0:
            await asyncio.sleep(delay)
        return "250 2.0.0 Ok: queued"


class SmtpRecorder:
    """An SMTP server on ``host`` and a free port that records what it accepts.

    Args:
        host: Where to listen.
        port: The port; a free one when omitted.
        smtp_kwargs: More arguments for aiosmtpd's ``SMTP`` (``data_size_limit``, ...).
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, **smtp_kwargs: Any):
        self.host = host
        self.port = port if port is not None else free_port()
        self.data_replies: list[str] = []
        self.hang_up_after_data = 0
        self.data_delay_s = 0.0
        self._lock = threading.Lock()
        self._messages: list[RecordedMessage] = []
        self._data_commands = 0
        self._controller = Controller(_Handler(self), hostname=host, port=self.port, **smtp_kwargs)
        self._running = False

    @property
    def url(self) -> str:
        """``smtp://host:port`` (for :class:`~tests.faults.proxy.FaultProxy`)."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> Self:
        if not self._running:
            self._controller.start()
            self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what arrived

    def messages(self) -> list[RecordedMessage]:
        """Every message accepted so far, in arrival order."""
        with self._lock:
            return list(self._messages)

    def count(self) -> int:
        """How many messages were accepted (duplicates included)."""
        with self._lock:
            return len(self._messages)

    @property
    def data_commands(self) -> int:
        """DATA commands seen, refused ones (``data_replies``) included."""
        with self._lock:
            return self._data_commands

    def by_message_id(self) -> Counter[str]:
        """Times each Message-ID arrived."""
        return Counter(message.message_id for message in self.messages())

    def by_job(self) -> Counter[str]:
        """Messages per ``X-ILS-Job`` header (``queue/name/id``)."""
        return Counter(message.job for message in self.messages())

    def duplicates(self) -> dict[str, int]:
        """Message-IDs that arrived more than once, with how many times."""
        return {mid: times for mid, times in self.by_message_id().items() if times > 1}

    def clear(self) -> None:
        """Forget every message recorded so far."""
        with self._lock:
            self._messages.clear()
            self._data_commands = 0

    async def wait_for_count(self, count: int, timeout: float = 10.0) -> list[RecordedMessage]:
        """Wait until at least ``count`` messages arrived; returns them all.

        Raises:
            AssertionError: fewer arrived in ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while (received := self.count()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{received} of {count} messages arrived in {timeout} s")
            await asyncio.sleep(0.01)
        return self.messages()
