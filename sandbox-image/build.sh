#!/usr/bin/env bash
# Build the code interpreter sandbox image without a container registry: debootstrap a Debian
# bookworm root with the Python packages of packages.txt, then `docker import` it.
#
#   sandbox-image/build.sh [--force] [--dockerfile] [IMAGE]
#
# IMAGE defaults to $ASSISTANTD_SANDBOX_IMAGE, else assistantd-sandbox:latest. The build is
# skipped when IMAGE exists and was built from the same recipe (this script + packages.txt);
# --force rebuilds anyway. --dockerfile builds from the Dockerfile instead (needs a registry).
# The offline build needs root, debootstrap and a Debian mirror: $SANDBOX_MIRROR, else the first
# Debian URI in /etc/apt/sources.list*, else deb.debian.org.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
force=0
method=offline
image="${ASSISTANTD_SANDBOX_IMAGE:-assistantd-sandbox:latest}"
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --dockerfile) method=dockerfile ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) image="$arg" ;;
  esac
done

recipe="$(cat "$here/build.sh" "$here/packages.txt" "$here/Dockerfile" | sha256sum | cut -c1-16)"
label=org.assistantd.sandbox.recipe
if ! docker info >/dev/null 2>&1; then
  echo "sandbox-image: the Docker engine is not reachable (is dockerd running?)" >&2
  exit 1
fi
current="$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ "$current" = "$recipe" ]; then
  echo "sandbox-image: $image is up to date (recipe $recipe)"
  exit 0
fi

packages="$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | tr '\n' ' ')"

if [ "$method" = dockerfile ]; then
  docker build --label "$label=$recipe" -t "$image" "$here"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "sandbox-image: the offline build runs debootstrap and must run as root" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "sandbox-image: install debootstrap" >&2; exit 1; }

mirror="${SANDBOX_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ {print $2} /^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' \
    | grep -E '/debian/?$' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d "${TMPDIR:-/var/tmp}/assistantd-sandbox.XXXXXX")"
log="$root.log"
cleanup() {
  umount "$root/proc" 2>/dev/null || true
  rm -rf --one-file-system "$root" "$log"
}
trap cleanup EXIT
fail() { tail -n 40 "$log" >&2; echo "sandbox-image: $1 failed (log above)" >&2; exit 1; }
# A long step, its output in the log: a progress line every 10 s (elapsed time, latest line).
step() {
  local what=$1 begun=$SECONDS pid
  shift
  "$@" > "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null && sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "sandbox-image:   $what, $((SECONDS - begun)) s: $(tail -n 1 "$log" | cut -c1-90)"
    fi
  done
  wait "$pid" || fail "$what"
}

started=$(date +%s)
echo "sandbox-image: debootstrap bookworm from $mirror into $root"
step debootstrap debootstrap --variant=minbase bookworm "$root" "$mirror"
# apt resolves the dependencies (debootstrap's own resolver does worse with --include).
mount -t proc proc "$root/proc"
echo "sandbox-image: installing $(echo "$packages" | wc -w) packages"
step "apt-get update" chroot "$root" apt-get update
step "apt-get install" chroot "$root" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends $packages
chroot "$root" apt-get clean
umount "$root/proc"

# The unprivileged user the code runs as, and the writable data directory (a tmpfs at run time).
echo 'sandbox:x:1000:1000:sandbox:/mnt/data:/usr/sbin/nologin' >> "$root/etc/passwd"
echo 'sandbox:x:1000:' >> "$root/etc/group"
echo 'sandbox:*:19000:0:99999:7:::' >> "$root/etc/shadow"
mkdir -p "$root/mnt/data" "$root/opt/sandbox"
# A prebuilt matplotlib font cache, copied into the container's /tmp when the kernel starts
# (building it there would cost about a second per container).
chroot "$root" env MPLCONFIGDIR=/opt/sandbox/matplotlib MPLBACKEND=Agg \
  python3 -c 'import matplotlib.pyplot'
# Trim what a read-only code sandbox never uses.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/var/log/* "$root"/dev/* "$root"/proc/* "$root"/sys/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true

echo "sandbox-image: importing as $image"
tar -C "$root" --numeric-owner -c . | docker import \
  --change "LABEL $label=$recipe" \
  --change 'ENV LANG=C.UTF-8 MPLBACKEND=Agg PYTHONDONTWRITEBYTECODE=1 HOME=/tmp' \
  --change 'USER 1000:1000' \
  --change 'WORKDIR /mnt/data' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "sandbox-image: built $image in $(( $(date +%s) - started )) s (recipe $recipe)"
