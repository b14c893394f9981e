"""The one place a blob store is made from the settings (API, workers, CLI alike)."""

from __future__ import annotations

from assistantd.blobs.store import BlobStore, LocalBlobStore
from assistantd.settings import Settings, blob_location


def make_blob_store(settings: Settings) -> BlobStore:
    """S3 when ASSISTANTD_BLOB_URL is set, else the `files` folder of the data dir."""
    if settings.blob_url is None:
        return LocalBlobStore(settings.blob_dir)
    from assistantd.blobs.s3 import S3BlobStore  # botocore takes a while to import

    bucket, prefix = blob_location(settings.blob_url)
    return S3BlobStore(
        bucket, prefix, endpoint_url=settings.aws_endpoint_url, region=settings.aws_region
    )
