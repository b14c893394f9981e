"""Choosing the blob store: ASSISTANTD_BLOB_URL, checked when the settings are read; a bad one
stops the command with one line that names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistantd.blobs.factory import make_blob_store
from assistantd.blobs.s3 import S3BlobStore
from assistantd.blobs.store import LocalBlobStore
from assistantd.settings import Settings


def test_factory_chooses_by_blob_url(tmp_path: Path) -> None:
    local = make_blob_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBlobStore)
    assert local.root == tmp_path / "files"
    s3 = make_blob_store(
        Settings(
            data_dir=tmp_path,
            blob_url="s3://my-bucket/some/prefix",
            aws_endpoint_url="http://127.0.0.1:9000",
            aws_region="eu-west-1",
        )
    )
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == (
        "my-bucket",
        "some/prefix/",
        "http://127.0.0.1:9000",
    )
    assert isinstance(make_blob_store(Settings(blob_url="s3://b-1")), S3BlobStore)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://bucket/x", "expected s3://BUCKET[/PREFIX]"),
        ("s3://Bad_Bucket/x", "is not an S3 bucket name"),
        ("s3://ab", "is not an S3 bucket name"),
        ("s3://bucket/a/../b", "bad key prefix"),
        ("s3://bucket/x?versionId=1", "with nothing else"),
        ("s3://user@bucket/x", "with nothing else"),
    ],
)
def test_bad_blob_urls_are_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        Settings(blob_url=url)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ASSISTANTD_BLOB_URL": "s3://Not_A_Bucket/x"}, "ASSISTANTD_BLOB_URL"),
        ({"ASSISTANTD_BLOB_URL": "/var/lib/blobs"}, "ASSISTANTD_BLOB_URL"),
        (
            {"ASSISTANTD_BLOB_URL": "s3://bucket", "AWS_ENDPOINT_URL": "minio:9000"},
            "AWS_ENDPOINT_URL",
        ),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
def test_a_bad_blob_url_stops_the_command_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str, command: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANTD_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "assistantd", command],
        env={**clean, "ASSISTANTD_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"assistantd: {variable}: ")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "assistantd.db").exists()  # refused before touching anything
