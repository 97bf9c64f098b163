"""Counts of what one session or user holds open in one web process (issue 23).

Plain bookkeeping, without FastAPI, so the app state can own one of each
(:class:`~ils.web.state.WebState`) and the hub can use :class:`OpenStreams` without
import cycles. The rules and their reasons are in :mod:`ils.web.limits`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from ils.limit_settings import LimitSettings

K = TypeVar("K", bound=Hashable)


class OpenStreams(Generic[K]):
    """The streams of one process by session and by user, oldest first.

    ``K`` is whatever the caller closes a stream through (the hub's wake-up channel);
    this class only decides which ones must go.
    """

    def __init__(self) -> None:
        # Dicts keep insertion order: the first key of each is its oldest stream.
        self._by_session: dict[str, dict[K, None]] = {}
        self._by_user: dict[str, dict[K, None]] = {}
        self._owner: dict[K, tuple[str, str]] = {}

    def add(self, stream: K, session_key: str, user_id: str, caps: LimitSettings) -> list[K]:
        """Register ``stream``; returns the older streams it pushes over a cap (already
        forgotten here, for the caller to close), oldest first."""
        self._owner[stream] = (session_key, user_id)
        self._by_session.setdefault(session_key, {})[stream] = None
        self._by_user.setdefault(user_id, {})[stream] = None
        evicted: list[K] = []
        for index, key, cap in (
            (self._by_session, session_key, caps.streams_per_session),
            (self._by_user, user_id, caps.streams_per_user),
        ):
            while len(index.get(key, ())) > cap:
                oldest = next(iter(index[key]))
                self.discard(oldest)
                evicted.append(oldest)
        return evicted

    def discard(self, stream: K) -> None:
        """Forget ``stream`` (closed, or evicted); unknown ones are ignored."""
        owner = self._owner.pop(stream, None)
        if owner is None:
            return
        for index, key in zip((self._by_session, self._by_user), owner, strict=True):
            streams = index[key]
            del streams[stream]
            if not streams:
                del index[key]

    def session_keys(self) -> set[str]:
        """The sessions holding at least one stream."""
        return set(self._by_session)

    def of_session(self, session_key: str) -> list[K]:
        """The streams of ``session_key``, oldest first."""
        return list(self._by_session.get(session_key, ()))

    def count(self, *, session_key: str | None = None, user_id: str | None = None) -> int:
        """Open streams of a session, of a user, or (neither given) of the process."""
        if session_key is not None:
            return len(self._by_session.get(session_key, {}))
        if user_id is not None:
            return len(self._by_user.get(user_id, {}))
        return len(self._owner)


class RequestSlots:
    """Expensive requests running now in this process, per session."""

    def __init__(self) -> None:
        self._running: dict[str, int] = {}

    def try_enter(self, session_key: str, cap: int) -> bool:
        """Take a slot of ``session_key``; ``False`` (nothing taken) when all ``cap``
        are in use."""
        running = self._running.get(session_key, 0)
        if running >= cap:
            return False
        self._running[session_key] = running + 1
        return True

    def leave(self, session_key: str) -> None:
        """Give back a slot taken with :meth:`try_enter`."""
        running = self._running.get(session_key, 0) - 1
        if running > 0:
            self._running[session_key] = running
        else:
            self._running.pop(session_key, None)

    def running(self, session_key: str) -> int:
        """How many expensive requests of ``session_key`` run now."""
        return self._running.get(session_key, 0)
