"""The one start-up banner of every ILS process (``ils serve``, ``ils worker``).

Operators read the same lines whichever process they started: the version and the
role, where jobs go now (:meth:`JobSystem.mode_sentence`), the app database and Redis
(never a password), then what the process itself adds (its queues and handlers, or
whether the web process runs workers and where files go).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import make_url

from ils import __version__
from ils.jobs.system import JobSystem


def start_up_banner(system: JobSystem, role: str, details: Sequence[str] = ()) -> list[str]:
    """The banner's lines, first line a summary; ``details`` follow, indented."""
    database = make_url(system.settings.effective_database_url)
    lines = [
        f"ILS {__version__} {role}: {system.mode_sentence()}",
        f"  database: {database.render_as_string(hide_password=True)}",
    ]
    connection = system.settings.redis_connection()
    if connection is not None:
        lines.append(f"  redis: {connection.describe()}")
    lines.extend(f"  {detail}" for detail in details)
    return lines
