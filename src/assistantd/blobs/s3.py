"""Blobs in S3-compatible object storage (AWS S3, MinIO, SeaweedFS, Ceph RGW), via aiobotocore.

aiobotocore is botocore (the AWS SDK's core) on aiohttp: every S3 operation this needs
(multipart upload, UploadPartCopy, listing with dates), the standard credential chain
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance roles), retries
and request signing, maintained with botocore itself.

Nothing is held whole in memory: a writer sends what it is given in parts of `part_size` as a
multipart upload (one plain PUT when the blob is smaller than a part), and a reader streams the
object's body in chunks. An object exists under its key only once it is complete, as with the
local store's rename. `concat` joins parts on the server (UploadPartCopy) when S3 allows it
(every part but the last at least 5 MiB) and streams them through otherwise.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from typing import TYPE_CHECKING, Any, cast

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from assistantd.blobs.store import (
    CHUNK,
    KEY,
    BlobTooLarge,
    BlobWriter,
    Digest,
    copy_streaming,
    put_whole,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

MIN_PART = 5 * 1024 * 1024
"""S3's smallest part of a multipart upload (all but the last)."""
MAX_COPY = 5 * 1024**3
"""S3's largest object copied in one request (CopyObject, UploadPartCopy)."""
MAX_PARTS = 10_000
PART_SIZE = 8 * 1024 * 1024


class BlobStoreError(OSError):
    """The object store refused or failed an operation (other than a missing key)."""


@contextmanager
def _translated(action: str, name: str) -> Iterator[None]:
    """S3's errors as the local store's: a missing key is FileNotFoundError, others OSError."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in ("NoSuchKey", "NotFound", "404"):
            raise FileNotFoundError(f"no blob {name}") from exc
        message = error.get("Message") or code
        raise BlobStoreError(f"object store: {action} {name}: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise BlobStoreError(f"object store: {action} {name}: {exc}") from exc


class _S3Writer:
    def __init__(self, store: S3BlobStore, key: str, max_size: int) -> None:
        self.key = key
        self.size = 0
        self._store = store
        self._name = store.name(key)
        self._max = max_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._max:
            raise BlobTooLarge(self.size)
        self._buffer += data
        if len(self._buffer) >= self._store.part_size:
            # The whole buffer goes as one part (parts need not be equal in size).
            part, self._buffer = bytes(self._buffer), bytearray()
            await self._send(part)

    async def _send(self, part: bytes) -> None:
        client = await self._store.client()
        with _translated("upload", self._name):
            if self._upload_id is None:
                started = await client.create_multipart_upload(
                    Bucket=self._store.bucket, Key=self._name
                )
                self._upload_id = started["UploadId"]
            number = len(self._parts) + 1
            sent = await client.upload_part(
                Bucket=self._store.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=io.BytesIO(part),  # shares `part`; aiohttp wants a file for a large body
            )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def commit(self) -> None:
        client = await self._store.client()
        data, self._buffer = bytes(self._buffer), bytearray()
        if self._upload_id is None:
            with _translated("store", self._name):
                await client.put_object(
                    Bucket=self._store.bucket, Key=self._name, Body=io.BytesIO(data)
                )
            return
        if data:
            await self._send(data)
        with _translated("store", self._name):
            await client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._upload_id = None

    async def abort(self) -> None:
        self._buffer = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            client = await self._store.client()
            with _translated("abort", self._name):
                await client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._name, UploadId=upload_id
                )
        except OSError:  # the sweep of abandoned uploads gets it later
            log.warning("could not abort the upload of blob %s", self.key, exc_info=True)


class S3BlobStore:
    """Blobs as objects `PREFIX<key>` of one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = PART_SIZE,
        max_connections: int = 64,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """`credentials` (access key id, secret key) override botocore's chain (the AWS_*
        variables, AWS_PROFILE, roles)."""
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes")
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.endpoint_url = endpoint_url
        self._config = AioConfig(
            region_name=region or "us-east-1",
            # MinIO, SeaweedFS and Ceph serve buckets under the path, not as host names.
            s3={"addressing_style": "path"} if endpoint_url else {},
            # Checksums only where S3 requires them: not every S3-compatible server takes the
            # CRC headers that newer botocore sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=max_connections,
            connect_timeout=10,
            read_timeout=120,
        )
        self._credentials = (
            {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
            if credentials
            else {}
        )
        self._stack: AsyncExitStack | None = None
        self._client: S3Client | None = None
        self._lock = asyncio.Lock()

    def __str__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    async def check(self) -> None:
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise BlobStoreError(f"no bucket {self.bucket!r} at {self}") from exc
            raise BlobStoreError(
                f"bucket {self.bucket!r} refused access ({code}) at {self}"
            ) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"cannot reach {self}: {exc}") from exc

    async def client(self) -> S3Client:
        """The S3 client, made on first use (nothing connects before that)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                stack = AsyncExitStack()
                made: Any = get_session().create_client(
                    "s3", endpoint_url=self.endpoint_url, config=self._config, **self._credentials
                )
                self._client = cast("S3Client", await stack.enter_async_context(made))
                self._stack = stack
        return self._client

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def new_key(self) -> str:
        return secrets.token_hex(16)

    def name(self, key: str) -> str:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad blob key {key!r}")
        return self.prefix + key

    async def writer(self, key: str, *, max_size: int) -> BlobWriter:
        return _S3Writer(self, key, max_size)

    async def put(self, key: str, data: bytes) -> None:
        await put_whole(await self.writer(key, max_size=len(data)), data)

    async def read(self, key: str, *, chunk_size: int = CHUNK) -> AsyncGenerator[bytes, None]:
        client = await self.client()
        name = self.name(key)
        with _translated("read", name):
            response = await client.get_object(Bucket=self.bucket, Key=name)
        body = response["Body"]
        try:
            with _translated("read", name):
                async for chunk in body.iter_chunks(chunk_size):
                    yield chunk
        finally:
            body.close()

    async def read_all(self, key: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(key)])

    async def delete(self, key: str) -> None:
        client = await self.client()
        name = self.name(key)
        with _translated("delete", name):
            await client.delete_object(Bucket=self.bucket, Key=name)

    async def size(self, key: str) -> int:
        client = await self.client()
        name = self.name(key)
        with _translated("look up", name):
            head = await client.head_object(Bucket=self.bucket, Key=name)
        return int(head["ContentLength"])

    async def concat(self, key: str, parts: Sequence[str], *, digest: Digest | None = None) -> int:
        """Write the blobs `parts`, in order, as one new blob; returns its size.

        On the server when S3 allows it; through this process when a digest of the bytes is
        wanted or a part other than the last is under S3's 5 MiB minimum.
        """
        if digest is not None:
            return await copy_streaming(self, key, parts, digest)
        sizes = [await self.size(part) for part in parts]  # FileNotFoundError if one is gone
        pieces = [(part, size) for part, size in zip(parts, sizes, strict=True) if size]
        if not pieces:
            await self.put(key, b"")
            return 0
        client = await self.client()
        name = self.name(key)
        if len(pieces) == 1 and pieces[0][1] <= MAX_COPY:
            with _translated("copy", name):
                await client.copy_object(
                    Bucket=self.bucket,
                    Key=name,
                    CopySource={"Bucket": self.bucket, "Key": self.name(pieces[0][0])},
                )
            return pieces[0][1]
        if (
            len(pieces) > MAX_PARTS
            or any(size < MIN_PART for _, size in pieces[:-1])
            or any(size > MAX_COPY for _, size in pieces)
        ):
            return await copy_streaming(self, key, [part for part, _ in pieces], None)
        with _translated("join", name):
            started = await client.create_multipart_upload(Bucket=self.bucket, Key=name)
        upload_id = started["UploadId"]
        try:
            done: list[CompletedPartTypeDef] = []
            for number, (part, _) in enumerate(pieces, start=1):
                source = self.name(part)
                with _translated("copy", source):
                    copied = await client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": self.bucket, "Key": source},
                    )
                done.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            with _translated("join", name):
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": done},
                )
        except BaseException:
            try:
                await client.abort_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id
                )
            except (ClientError, BotoCoreError):
                log.warning("could not abort the join of blob %s", key, exc_info=True)
            raise
        return sum(size for _, size in pieces)

    async def stale_keys(self, *, older_than: float) -> AsyncIterator[list[str]]:
        client = await self.client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        with _translated("list", self.prefix or "/"):
            async for page in pages:
                found = []
                for entry in page.get("Contents", []):
                    key = entry["Key"][len(self.prefix) :]
                    if KEY.fullmatch(key) and entry["LastModified"].timestamp() < older_than:
                        found.append(key)
                if found:
                    yield found

    async def drop_abandoned(self, *, older_than: float) -> int:
        client = await self.client()
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        dropped = 0
        with _translated("list uploads of", self.prefix or "/"):
            async for page in pages:
                for upload in page.get("Uploads", []):
                    name = upload["Key"]
                    if not KEY.fullmatch(name[len(self.prefix) :]):
                        continue
                    if upload["Initiated"].timestamp() >= older_than:
                        continue
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload["UploadId"]
                    )
                    dropped += 1
        return dropped
