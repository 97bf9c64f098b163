"""What a check returns: a status, one sentence, the fix; and how an error becomes one.

Every check of :mod:`ils.checks` returns these, so the command, its JSON and the
start-up of ``ils serve`` / ``ils worker`` read one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """How a check went: ``problem`` makes ``ils check`` exit 1, ``warning`` does not."""

    OK = "ok"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One finding: what was looked at, how it went, a sentence, and the fix.

    Attributes:
        name: Stable identifier (``database``, ``redis_eviction``...), also the JSON key.
        status: ok, warning or problem.
        message: One sentence for a person; never a secret or a stack trace.
        fix: What to do about it (``None`` when there is nothing to do).
        fatal: A problem that makes running impossible: ``ils serve`` / ``ils worker``
            refuse to start on it instead of failing later and obscurely.
        duration_ms: How long the check took (set by the runner).
    """

    name: str
    status: Status
    message: str
    fix: str | None = None
    fatal: bool = False
    duration_ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The result as a JSON object (``ils check --json``)."""
        return {
            "name": self.name,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
            "fatal": self.fatal,
            "duration_ms": round(self.duration_ms, 1),
        }


def ok(name: str, message: str) -> CheckResult:
    """A check that found nothing wrong."""
    return CheckResult(name, Status.OK, message)


def warning(name: str, message: str, fix: str | None = None) -> CheckResult:
    """Something that works today but risks data or surprises (printed, exit code 0)."""
    return CheckResult(name, Status.WARNING, message, fix)


def problem(name: str, message: str, fix: str | None, *, fatal: bool = False) -> CheckResult:
    """Something that does not work (``ils check`` exits 1); ``fatal``: nor can a start."""
    return CheckResult(name, Status.PROBLEM, message, fix, fatal=fatal)


def describe_error(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message.

    SQLAlchemy wraps the driver's error and appends the statement and a link; the
    driver's own first line is what a person can act on.
    """
    inner = getattr(exc, "orig", None)
    if isinstance(inner, BaseException):
        exc = inner
    lines = str(exc).strip().splitlines()
    text = lines[0].strip().rstrip(".") if lines else ""
    name = type(exc).__name__
    return (f"{name}: {text}" if text else name)[:300]
