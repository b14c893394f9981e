#!/usr/bin/env bash
# `make compose-up` / `make compose-down`: docker-compose.yml on a machine without a container
# registry.
#
#   deploy/compose.sh up [COMPOSE UP OPTIONS...]
#   deploy/compose.sh down
#
# up: builds the images the stack needs, each skipped when up to date (the server image,
# deploy/build-image.sh; the sandbox image, sandbox-image/build.sh; PostgreSQL with pgvector,
# deploy/build-postgres-image.sh, unless ASSISTANTD_POSTGRES_IMAGE names one; SeaweedFS,
# deploy/build-seaweedfs-image.sh, when COMPOSE_PROFILES has s3 and ASSISTANTD_SEAWEEDFS_IMAGE
# names none), starts the stack with the Compose it finds (`docker compose`, else Debian's
# `docker-compose`, installed with apt-get when neither is there) and returns once the API's
# /readyz answers (COMPOSE_UP_TIMEOUT seconds at most, default 240; else the logs of the services
# that are not up). ASSISTANTD_API_KEYS is required; ASSISTANTD_PORT (default 8080),
# ASSISTANTD_MODEL_BASE_URL, COMPOSE_PROJECT_NAME, COMPOSE_PROFILES and COMPOSE_FILE are Compose's
# as usual; WORKERS=N runs N workers (--scale worker=N).
#
# down: removes the stack (every profile's services), its volumes, and the sandbox containers its
# workers started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
action="${1:-}"
[ "$#" -gt 0 ] && shift
case "$action" in
  up|down) ;;
  *) echo "usage: deploy/compose.sh up|down" >&2; exit 2 ;;
esac
say() { echo "compose-$action: $*" >&2; }

check_docker() {
  if ! command -v docker >/dev/null; then
    say "no docker command: install Docker (apt-get install docker.io)"
    exit 1
  fi
  local problem
  if ! problem="$(docker info 2>&1 >/dev/null)"; then
    if grep -qi "permission denied" <<<"$problem"; then
      say "no permission on the Docker socket: run as root or join the docker group"
    else
      say "the Docker engine is not running: start it (systemctl start docker, or dockerd & as root)"
    fi
    exit 1
  fi
}

compose=()
find_compose() {
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "no Docker Compose here: installing Debian's docker-compose"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; } \
      >/dev/null || { say "apt-get install docker-compose failed"; exit 1; }
    compose=(docker-compose)
  else
    say "no Docker Compose: install the compose plugin (docker compose) or docker-compose"
    exit 1
  fi
}

# The project's containers (any state), one id a line.
project_containers() { "${compose[@]}" ps -a -q 2>/dev/null || true; }

if [ "$action" = down ]; then
  # The file requires the keys; `down` does not use them.
  export ASSISTANTD_API_KEYS="${ASSISTANTD_API_KEYS:-unused}"
  export COMPOSE_PROFILES="${COMPOSE_PROFILES:+$COMPOSE_PROFILES,}s3"
  check_docker
  find_compose
  # Sandboxes are the engine's containers, not the project's: those its containers started
  # (owner label "<hostname>:<pid>", a container's hostname being its short id) go too.
  hosts="$(project_containers | cut -c1-12)"
  if [ -n "$hosts" ]; then
    sandboxes="$(docker ps -aq --filter label=org.assistantd.sandbox)"
    for id in $sandboxes; do
      owner="$(docker inspect -f '{{ index .Config.Labels "org.assistantd.sandbox.owner" }}' "$id" \
        2>/dev/null || true)"
      if grep -qxF "${owner%%:*}" <<<"$hosts"; then
        docker rm -f "$id" >/dev/null 2>&1 || true
      fi
    done
  fi
  "${compose[@]}" down --volumes --remove-orphans "$@"
  exit 0
fi

# --- up ------------------------------------------------------------------------------------------
if [ -z "${ASSISTANTD_API_KEYS:-}" ]; then
  say "set ASSISTANTD_API_KEYS (the API keys the server accepts, comma-separated), e.g. ASSISTANTD_API_KEYS=sk-\$(openssl rand -hex 16) make compose-up"
  exit 2
fi
case "${ASSISTANTD_MODEL_BASE_URL:-}" in
  *://localhost[:/]*|*://localhost|*://127.*|*://\[::1\]*)
    say "warning: ASSISTANTD_MODEL_BASE_URL is a loopback address, which in a container is the container itself: give this machine's own address (or the model's service name)" ;;
esac
port="${ASSISTANTD_PORT:-8080}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  say "ASSISTANTD_PORT must be a TCP port number, not '$port'"
  exit 2
fi
check_docker
find_compose
python="${PYTHON:-python3}"

# The port: free, unless this project's API already holds it.
if [ -z "$("${compose[@]}" ps -q api 2>/dev/null)" ]; then
  if ! "$python" - "$port" <<'PY'
import socket
import sys

for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        continue
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, int(sys.argv[1])))
    except OSError:
        sys.exit(1)
    finally:
        sock.close()
PY
  then
    say "port $port is in use: free it or set ASSISTANTD_PORT to another port"
    exit 1
  fi
fi

started=$(date +%s)
deploy/build-image.sh
sandbox-image/build.sh
if [ -z "${ASSISTANTD_POSTGRES_IMAGE:-}" ]; then
  deploy/build-postgres-image.sh
  export ASSISTANTD_POSTGRES_IMAGE=assistantd-postgres:latest
fi
if [[ ",${COMPOSE_PROFILES:-}," == *,s3,* ]] && [ -z "${ASSISTANTD_SEAWEEDFS_IMAGE:-}" ]; then
  deploy/build-seaweedfs-image.sh
  export ASSISTANTD_SEAWEEDFS_IMAGE=assistantd-seaweedfs:latest
fi
built=$(date +%s)

# Why the stack is not up: the state of each container, and the logs of those not up.
report() {
  local ids id state
  ids="$(project_containers)"
  [ -n "$ids" ] || { say "no container of the project was created"; return; }
  for id in $ids; do
    # name status exit-code health
    state="$(docker inspect -f '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null)" || continue
    read -r name status code health <<<"$state"
    [ "$health" = none ] && health=""
    echo "  ${name#/}: $status${health:+ ($health)}, exit code $code" >&2
    if ! { [ "$status" = running ] && [ "$health" != unhealthy ]; } \
      && ! { [ "$status" = exited ] && [ "$code" = 0 ]; } || [[ "$name" == *api* ]]; then
      echo "---- logs of ${name#/} (last 40 lines) ----" >&2
      docker logs --tail 40 "$id" 2>&1 | sed 's/^/  /' >&2
    fi
  done
}

args=()
[ -n "${WORKERS:-}" ] && args+=(--scale "worker=$WORKERS")
if ! "${compose[@]}" up -d "${args[@]}" "$@"; then
  say "the stack did not start"
  report
  exit 1
fi

timeout="${COMPOSE_UP_TIMEOUT:-240}"
url="http://127.0.0.1:$port/readyz"
if ! "$python" - "$url" "$timeout" <<'PY'
import sys
import time
import urllib.request

url, timeout = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.5)
PY
then
  say "$url did not answer ok within $timeout s"
  report
  exit 1
fi
echo "compose-up: ready at http://127.0.0.1:$port/v1 (images $((built - started)) s, start $(( $(date +%s) - built )) s)"
