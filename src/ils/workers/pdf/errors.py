"""Why a document job fails: for good (the data), or for now (storage, the pool)."""

from __future__ import annotations

from ils.errors import JobFailedError, PermanentJobError


class DocumentDataError(PermanentJobError):
    """The record to print is missing or inconsistent (order deleted, invoice without
    lines): retrying cannot help, so the job fails at once and no file is written.

    Messages name record ids and the problem, never patient data.
    """


class DocumentRenderError(JobFailedError):
    """Rendering did not finish (the render process died, or took too long): retried."""


class DocumentVersionConflict(JobFailedError):
    """Another version of the same document was stored while this one was rendered;
    rendering again picks the next free version."""
