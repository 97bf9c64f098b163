"""Files and directories only the service's own user can read: 0600 and 0700.

Why: what ILS writes to disk is private whoever else has an account on the machine:
the app database (patients, prescriptions, sessions), generated documents
(examination forms among them), uploaded tracing files, stored e-mails and the
secret key. Their modes are set here explicitly, not left to the process's umask: a
service started under the common 022 would otherwise publish every one of them to
all local users. The one helper is used by every writer, so no new writer can forget.

Only what ILS creates is given these modes; an existing directory (a data directory
an operator made and shares with a backup user, say) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

#: Read and write for the owner only.
FILE_MODE: Final = 0o600
#: Enter, list and write for the owner only.
DIR_MODE: Final = 0o700


def private_dir(path: Path) -> Path:
    """Make ``path`` and every missing parent with mode 0700; existing ones are kept.

    Returns:
        ``path``.
    """
    missing: list[Path] = []
    here = path
    # Up to the first path that exists (under a regular file, mkdir then says "Not a
    # directory", as it should).
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # another process made it first: its mode is its maker's
        # The umask may have taken bits off (even the owner's): set the mode itself.
        os.chmod(directory, DIR_MODE)
    return path


def open_private(path: Path, flags: int = os.O_WRONLY) -> int:
    """A new file at ``path`` (which must not exist), mode 0600, opened with ``flags``
    (plus ``O_CREAT | O_EXCL``); its parent directory is made private if missing.

    Returns:
        The open file descriptor (wrap it with :func:`os.fdopen`).

    Raises:
        FileExistsError: ``path`` exists.
    """
    private_dir(path.parent)
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists (then it is untouched).

    Returns:
        Whether it was created here.
    """
    if path.exists():
        return False  # asks nothing of its directory (which may be read-only)
    try:
        fd = open_private(path)
    except FileExistsError:
        return False
    os.close(fd)
    return True
