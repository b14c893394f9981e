"""The one place a blob store is made from the settings (API, workers, CLI alike)."""

from __future__ import annotations

import logging

import anyio

from assistantd.blobs.store import BlobStore, LocalBlobStore
from assistantd.settings import Settings, blob_location

log = logging.getLogger(__name__)
CHECK_SECONDS = 10.0


def make_blob_store(settings: Settings) -> BlobStore:
    """S3 when ASSISTANTD_BLOB_URL is set, else the `files` folder of the data dir."""
    if settings.blob_url is None:
        return LocalBlobStore(settings.blob_dir)
    from assistantd.blobs.s3 import S3BlobStore  # botocore takes a while to import

    bucket, prefix = blob_location(settings.blob_url)
    return S3BlobStore(
        bucket, prefix, endpoint_url=settings.aws_endpoint_url, region=settings.aws_region
    )


async def check_blob_store(blobs: BlobStore) -> str | None:
    """Why `blobs` cannot be used now (None: it can), within a few seconds."""
    try:
        with anyio.fail_after(CHECK_SECONDS):
            await blobs.check()
    except TimeoutError:
        return f"{blobs} did not answer in {CHECK_SECONDS:.0f} s"
    except OSError as exc:
        return str(exc)
    return None


async def log_blob_store(blobs: BlobStore) -> None:
    """Say at start where file contents go, and whether that works."""
    problem = await check_blob_store(blobs)
    if problem is None:
        log.info("file contents are stored in %s", blobs)
    else:
        log.warning("file contents cannot be stored: %s", problem)
