"""Which file storage a process uses, built from settings at its composition roots.

The web app builds one :class:`Storages` in its lifespan (``WebState.storage``) and
each worker builds its own when it is registered, rather than one per request: an S3
client holds a connection pool (and TLS sessions) worth keeping. With the default
``local`` backend nothing changes from before: plain directories under ``data_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ils.settings import Settings
from ils.storage import FileStorage, LocalFileStorage
from ils.storage.s3 import S3FileStorage, open_bucket


@dataclass(frozen=True, slots=True)
class Storages:
    """The two areas files are kept in.

    Attributes:
        documents: Generated documents (the PDF worker writes, the web app serves).
        uploads: Uploaded files (the web app writes, the OMA worker reads).
        where: Where they are, for start-up logs (no credentials).
    """

    documents: FileStorage
    uploads: FileStorage
    where: str


def open_storages(settings: Settings) -> Storages:
    """The storage ``settings.storage.backend`` names.

    Raises:
        ConfigurationError: the s3 backend's client cannot be set up.
    """
    config = settings.storage
    if config.backend == "local":
        return Storages(
            LocalFileStorage(settings.documents_dir),
            LocalFileStorage(settings.uploads_dir),
            f"local directories {settings.documents_dir} and {settings.uploads_dir}",
        )
    bucket = open_bucket(config)
    prefix = f"{config.key_prefix}/" if config.key_prefix else ""
    return Storages(
        S3FileStorage(bucket, "documents", key_prefix=config.key_prefix),
        S3FileStorage(bucket, "uploads", key_prefix=config.key_prefix),
        f"S3 bucket {config.bucket} ({config.endpoint_url or 'AWS ' + config.region}), "
        f"keys under {prefix}documents/ and {prefix}uploads/",
    )
