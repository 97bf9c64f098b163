"""``ils check``: is this deployment's configuration sound, and does what it points at answer?

A deployment fails in ways the code cannot fix by itself: a database nobody migrated, a
Redis that evicts queue keys under memory pressure, a documents directory that is not
writable, a mail relay on the wrong port. Each shows up late and far from its cause (a
lost job, a failed PDF, a silent e-mail) unless something looks first. This package
looks: every check is a small coroutine that returns results (a name, ``ok`` /
``warning`` / ``problem``, one sentence, and the fix), and they run concurrently, each
under a timeout, so a black-holed server costs seconds, not a hung command.

The same checks run when ``ils serve`` and ``ils worker`` start (:func:`start_up_checks`):
a result marked ``fatal`` (the database does not answer or is not migrated, Redis evicts
while ``ILS_REDIS_REQUIRE_NOEVICTION`` is on, no shared secret key) stops the start with
its sentence and fix; everything else is logged as a warning once and the process runs.

Nothing here prints a secret (the values of every secret setting are blanked out of
each sentence, URLs are shown without passwords) or a stack trace (an unexpected error
becomes a problem line naming the exception). Checks never change anything they look at
beyond a probe object in storage that is deleted again: no migration, no key file, no
database file is created, no mail is sent.
"""

from __future__ import annotations

from ils.checks.config import load_settings_checked
from ils.checks.result import CheckResult, Status, describe_error
from ils.checks.runner import (
    CHECKS,
    DEFAULT_TIMEOUT_S,
    START_TIMEOUT_S,
    Check,
    Role,
    check_deployment,
    exit_code,
    render,
    results_json,
    run_checks,
    start_up_checks,
    summary,
)

__all__ = [
    "CHECKS",
    "DEFAULT_TIMEOUT_S",
    "START_TIMEOUT_S",
    "Check",
    "CheckResult",
    "Role",
    "Status",
    "check_deployment",
    "describe_error",
    "exit_code",
    "load_settings_checked",
    "render",
    "results_json",
    "run_checks",
    "start_up_checks",
    "summary",
]
