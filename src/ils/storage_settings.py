"""Settings of file storage (``ILS_STORAGE__BACKEND``, ``ILS_STORAGE__BUCKET``, ...).

A module of its own, beside ``ils.settings``, so the storage options are read next to
their checks and the settings module stays small. ``ils.storage`` builds the store
from :class:`StorageSettings`; docs/storage.md explains the backends.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

#: Where documents and uploaded files live: directories under ``data_dir`` (one
#: machine) or an S3-compatible bucket (every machine of a fleet reads the same files).
StorageBackend = Literal["local", "s3"]

#: One part of ``key_prefix``: the same safe names as the storage keys themselves.
_PREFIX_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StorageSettings(BaseModel):
    """File storage (``ILS_STORAGE__BACKEND``, ``ILS_STORAGE__BUCKET``, ...).

    ``local`` keeps today's embedded default: files under ``documents_dir`` and
    ``uploads_dir`` of the process that wrote them. ``s3`` stores them in one bucket,
    so a PDF rendered by a worker on one machine is served by any web server
    (docs/storage.md). Unset credentials fall back to the standard AWS sources
    (``AWS_*`` variables, an instance or container role).
    """

    model_config = {"extra": "forbid"}

    backend: StorageBackend = "local"
    bucket: str | None = None
    # ``https://s3.eu-west-1.amazonaws.com``, ``http://127.0.0.1:9000``; AWS's endpoint
    # of ``region`` when unset.
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = Field(default=None, repr=False)
    # Put before every object key (``ils/prod`` -> ``ils/prod/documents/<company>/...``),
    # so one bucket can hold several installations.
    key_prefix: str = ""
    # ``endpoint/bucket/key`` rather than ``bucket.endpoint/key``: what MinIO, Ceph and
    # most self-hosted servers expect.
    path_style: bool = False
    # Seconds one request may take, retries included: past it the download answers 503
    # and the job is retried, rather than holding either for minutes.
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("bucket", "endpoint_url", "access_key_id")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None

    @field_validator("endpoint_url")
    @classmethod
    def _http_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL without spaces")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _safe_prefix(cls, value: str) -> str:
        value = value.strip().strip("/")
        if value and not all(_PREFIX_PART.match(part) for part in value.split("/")):
            raise ValueError("must be slash-separated names of letters, digits, '.', '_', '-'")
        return value

    @model_validator(mode="after")
    def _complete(self) -> StorageSettings:
        if self.backend == "s3" and self.bucket is None:
            raise ValueError("the s3 backend needs a bucket (ILS_STORAGE__BUCKET)")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        return self
