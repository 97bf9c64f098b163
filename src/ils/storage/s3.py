"""Files in an S3-compatible bucket, so that every machine of a fleet reads what any
machine wrote (a PDF rendered by a worker on one host, downloaded through another).

The client is ``obstore`` (Python bindings of the Rust ``object_store`` crate).
Chosen over aioboto3 because it is one self-contained wheel (no botocore, whose
tight pins on every release fight the rest of the environment), its async calls run
on its own Rust runtime instead of a thread pool, it ships type stubs that pass
``mypy --strict``, a put is atomic (no reader sees half an object), and it talks to
AWS, MinIO, Ceph, Garage or R2 alike. One :class:`S3Store` keeps one connection
pool, so a process builds it once (``ils.storage.backends``) and shares it.

Object names are ``[key_prefix/]<area>/<key>``: ``area`` is ``documents`` or
``uploads`` and ``key`` what the callers build (``<company>/<kind>/<subject>/<id>.pdf``,
``<company>/<file id>.oma``), so one bucket holds both, laid out like the local
directories.

Every object carries the SHA-256 of its content as user metadata
(``x-amz-meta-sha256``). A read hashes what came back and compares it with that and
with the caller's recorded checksum (the database row); a mismatch, or an object with
no checksum at all, raises :class:`StorageChecksumError` and the bytes are not used.
The metadata catches damage on the server even for a caller that recorded nothing;
the row also catches an object replaced whole, metadata included.
"""

from __future__ import annotations

import hashlib
import mimetypes
from datetime import timedelta
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit, urlunsplit

from obstore.exceptions import BaseError
from obstore.store import S3Store

from ils.errors import ConfigurationError, StorageChecksumError, StorageError
from ils.storage import StoredObject, check_key, verify_checksum
from ils.storage_settings import StorageSettings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

#: The user-metadata name of the content's SHA-256 (``x-amz-meta-sha256`` on the wire).
SHA256_ATTRIBUTE: Final = "sha256"
#: Errors of obstore's calls: its own, and the built-in ones it raises for some.
_CLIENT_ERRORS: Final = (BaseError, OSError, ValueError, RuntimeError)
#: Tries of one request before it fails (obstore's default of 10 over three minutes
#: would hold a download or a job that long while the bucket is unreachable).
MAX_RETRIES: Final = 3
#: obstore's messages run on with the request, the response body and a debug dump:
#: a StorageError keeps the first line, cut to this length.
MESSAGE_CHARS: Final = 300


class S3FileStorage:
    """One area (``documents``, ``uploads``) of a bucket, as a ``FileStorage``."""

    def __init__(self, store: S3Store, area: str, *, key_prefix: str = "") -> None:
        self.store = store
        self.base = "/".join(part for part in (key_prefix.strip("/"), area) if part)

    def object_name(self, key: str) -> str:
        """The bucket's name for ``key`` (the key checked like a local path)."""
        return f"{self.base}/{'/'.join(check_key(key))}"

    async def put(self, key: str, data: bytes) -> StoredObject:
        name = self.object_name(key)
        digest = hashlib.sha256(data).hexdigest()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        try:
            # One PUT, never multipart: our files are far below S3's 5 GiB limit for a
            # single request, and an interrupted multipart upload would leave hidden
            # parts billed in the bucket.
            await self.store.put_async(
                name,
                data,
                attributes={"Content-Type": content_type, SHA256_ATTRIBUTE: digest},
                use_multipart=False,
            )
        except _CLIENT_ERRORS as exc:
            raise StorageError(f"cannot store file {key} in the bucket: {summary(exc)}") from None
        return StoredObject(key, digest, len(data))

    async def get(self, key: str, *, sha256: str | None = None) -> bytes:
        name = self.object_name(key)
        try:
            result = await self.store.get_async(name)
            recorded = result.attributes.get(SHA256_ATTRIBUTE)
            data = bytes(await result.bytes_async())
        except FileNotFoundError:
            raise FileNotFoundError(f"no stored file {key}") from None
        except _CLIENT_ERRORS as exc:
            raise StorageError(f"cannot read file {key} from the bucket: {summary(exc)}") from None
        if recorded is None and sha256 is None:
            raise StorageChecksumError(
                f"stored file {key} has no recorded SHA-256: refused rather than used unchecked"
            )
        verify_checksum(key, data, recorded, sha256)
        return data

    async def delete(self, key: str) -> None:
        name = self.object_name(key)
        try:
            await self.store.delete_async(name)
        except FileNotFoundError:
            return
        except _CLIENT_ERRORS as exc:
            raise StorageError(
                f"cannot delete file {key} from the bucket: {summary(exc)}"
            ) from None


def open_bucket(settings: StorageSettings) -> S3Store:
    """The client of the configured bucket (one connection pool: share it).

    Settings left unset (credentials, endpoint) fall back to obstore's standard
    sources: the ``AWS_*`` variables, then an instance or container role.

    Raises:
        ConfigurationError: no bucket, or settings the client refuses.
    """
    if settings.bucket is None:
        raise ConfigurationError("the s3 storage backend needs ILS_STORAGE__BUCKET")
    config: S3Config = {
        "region": settings.region,
        "virtual_hosted_style_request": not settings.path_style,
    }
    endpoint = bucket_endpoint(settings)
    if endpoint is not None:
        config["endpoint"] = endpoint
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        config["access_key_id"] = settings.access_key_id
        config["secret_access_key"] = settings.secret_access_key.get_secret_value()
    timeout = timedelta(seconds=settings.timeout_s)
    client: ClientConfig = {
        "timeout": timeout,
        "connect_timeout": min(timeout, timedelta(seconds=5)),
        "allow_http": endpoint is not None and endpoint.startswith("http://"),
    }
    retry: RetryConfig = {"max_retries": MAX_RETRIES, "retry_timeout": timeout}
    try:
        return S3Store(settings.bucket, config=config, client_options=client, retry_config=retry)
    except _CLIENT_ERRORS as exc:
        raise ConfigurationError(f"cannot set up the S3 client: {summary(exc)}") from None


def bucket_endpoint(settings: StorageSettings) -> str | None:
    """The URL requests go to: the endpoint as configured for path-style addressing,
    with the bucket as the first label of its host otherwise (``http://b.host:9000``;
    obstore expects the bucket in a virtual-hosted endpoint), ``None`` for AWS's own
    endpoint of the region."""
    if settings.endpoint_url is None:
        return None
    if settings.path_style:
        return settings.endpoint_url
    parts = urlsplit(settings.endpoint_url)
    return urlunsplit(parts._replace(netloc=f"{settings.bucket}.{parts.netloc}"))


def summary(exc: BaseException) -> str:
    """The first line of a client error, short enough for a job's failure reason."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if len(first) > MESSAGE_CHARS:
        first = first[: MESSAGE_CHARS - 3] + "..."
    return first
