"""The event channels workers publish on and the web's live streams listen to.

They are the contract between two processes (``ils.jobs.events``): a worker announces a
new notification or a chat answer, the web server wakes the user's stream. Kept here,
beside the events they travel on, so the web reads the names without importing the
workers (and their numerical and PDF libraries).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

#: New notifications: one ``<notification id> <user id>`` line per row (a bare user id
#: line means "that user has something new", without saying what).
NOTIFICATIONS: Final = "notifications"
#: Rows announced per ``NOTIFICATIONS`` message (an order to a lab of 100 users is one
#: message, not 100 publishes).
ROWS_PER_MESSAGE: Final = 200
#: A chat answer is ready; the message is the conversation id.
CHAT: Final = "chat"


def notification_messages(rows: Iterable[tuple[str, str]]) -> Iterator[str]:
    """The ``NOTIFICATIONS`` messages announcing ``rows`` (notification id, user id)."""
    lines = [f"{notification_id} {user_id}" for notification_id, user_id in rows]
    for start in range(0, len(lines), ROWS_PER_MESSAGE):
        yield "\n".join(lines[start : start + ROWS_PER_MESSAGE])


def read_notification_message(message: str) -> tuple[dict[str, str], set[str]]:
    """The rows a ``NOTIFICATIONS`` message announces (notification id → user id), and
    the users it only says have something new. Lines that are neither are ignored."""
    rows: dict[str, str] = {}
    users: set[str] = set()
    for line in message.splitlines():
        parts = line.split()
        if len(parts) == 2:
            rows[parts[0]] = parts[1]
        elif len(parts) == 1:
            users.add(parts[0])
    return rows, users
