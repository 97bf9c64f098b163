"""The key that signs session cookies: one per deployment, not one per machine.

A cookie signed by one web server must verify on every other behind the balancer, so
as soon as a deployment can have several machines (PostgreSQL or Redis configured) the
key is required from outside, ``ILS_SECRET_KEY`` or ``ILS_SECRET_KEY_FILE`` (a mounted
secret), and the servers refuse to start without it: a key generated per data
directory would sign sessions the other servers reject, which shows only as random
sign-outs. The embedded default (SQLite, no Redis: one machine) still generates its own
under the data directory, so ``ils serve`` works with nothing configured.

Rotation: the new key goes into ``ILS_SECRET_KEY`` and the old one into
``ILS_SECRET_KEY_PREVIOUS`` (comma-separated); cookies are signed with the new key and
verified with any of them, so nobody is signed out by the change. Drop the old key
once sessions signed with it have expired (``session_ttl_hours``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ils.errors import ConfigurationError
from ils.files import open_private

if TYPE_CHECKING:
    from ils.settings import Settings

#: A configured key shorter than this is refused: 32 URL-safe characters carry about
#: 190 bits, beyond guessing, and shorter values are usually a password or a
#: placeholder ("changeme") typed by hand.
MIN_SECRET_KEY_LENGTH = 32
#: How to make a good key; every message about the key says it.
GENERATE_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
#: The generated key's file under the data directory (embedded default only).
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)


@dataclass(frozen=True, slots=True)
class SecretKeys:
    """The key new signatures use, and older keys still accepted when verifying."""

    current: str = field(repr=False)
    previous: tuple[str, ...] = field(default=(), repr=False)


def resolve_secret_keys(settings: Settings) -> SecretKeys:
    """The deployment's keys, or a :class:`~ils.errors.ConfigurationError` saying what to
    set and how to make a key.

    Previous keys are not held to the minimum length: they only verify, only until
    they are dropped, and refusing a short one would make rotating away from it sign
    everybody out.
    """
    current = _configured(settings)
    if current is None:
        if not settings.embedded:
            raise ConfigurationError(
                "ILS_SECRET_KEY (or ILS_SECRET_KEY_FILE) must be set when PostgreSQL or "
                "Redis is configured: every web server of the deployment must sign "
                "sessions with the same key. Generate one with "
                f"{GENERATE_COMMAND} and give the same value to every web server"
            )
        current = _generated(settings.data_dir)
    previous = []
    for raw in settings.secret_key_previous.split(","):
        key = raw.strip()
        if key and key != current and key not in previous:
            previous.append(key)
    return SecretKeys(current, tuple(previous))


def _configured(settings: Settings) -> str | None:
    """``ILS_SECRET_KEY`` or the content of ``ILS_SECRET_KEY_FILE``, checked."""
    key, name = settings.secret_key.strip(), "ILS_SECRET_KEY"
    path = settings.secret_key_file
    if path is not None:
        if key:
            raise ConfigurationError("set ILS_SECRET_KEY or ILS_SECRET_KEY_FILE, not both")
        try:
            key = path.read_text().strip()
        except OSError as err:
            raise ConfigurationError(
                f"ILS_SECRET_KEY_FILE: cannot read {path} ({err.strerror or err})"
            ) from None
        if not key:
            raise ConfigurationError(f"ILS_SECRET_KEY_FILE: {path} is empty")
        name = f"the key in {path}"
    if not key:
        return None
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigurationError(
            f"{name} is {len(key)} characters long; at least {MIN_SECRET_KEY_LENGTH} are "
            f"needed. Generate one with {GENERATE_COMMAND}"
        )
    return key


def _generated(data_dir: Path) -> str:
    """The installation's own key, made on first start (embedded default only).

    Written once to ``data_dir/secret_key`` (mode 0600) and read back on every later
    start, so sessions survive restarts and every process on this machine agrees on it.
    The file is published with an exclusive link, so two processes starting at once
    still end up with the same key.
    """
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        draft = data_dir / f".{SECRET_KEY_FILE}.{secrets.token_hex(8)}"
        fd = open_private(draft)  # 0600 in a 0700 data directory, whatever the umask
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            # When another process won the race, its key is the one to use.
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
    key = path.read_text().strip()
    if not key:
        raise ConfigurationError(f"{path} is empty: delete it or set ILS_SECRET_KEY")
    return key
