"""The event channels workers publish on and the web's live streams listen to.

They are the contract between two processes (``ils.jobs.events``): a worker announces a
new notification or a chat answer, the web server wakes the user's stream. Kept here,
beside the events they travel on, so the web reads the names without importing the
workers (and their numerical and PDF libraries).
"""

from __future__ import annotations

from typing import Final

#: A user's new notification; the message is the user id.
NOTIFICATIONS: Final = "notifications"
#: A chat answer is ready; the message is the conversation id.
CHAT: Final = "chat"
