"""The `assistantd` command line: serve, worker, migrate, keys, sandbox."""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable

from pydantic import AliasChoices, ValidationError
from sqlalchemy import func, select

from assistantd.ops.logs import configure_logging
from assistantd.settings import Settings

log = logging.getLogger("assistantd")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


async def _db_key_count(settings: Settings) -> int:
    from assistantd.db.engine import make_engine
    from assistantd.db.models import ApiKey

    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(ApiKey)) or 0)
    finally:
        await engine.dispose()


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from assistantd.app import create_app
    from assistantd.db.migrate import upgrade

    # The port first: a server that cannot listen must not migrate or start a worker.
    listener = _listen(args.host, args.port)
    if listener is None:
        return 2
    if settings.migrate_on_start:
        upgrade(settings)
    has_keys = bool(settings.static_keys()) or asyncio.run(_db_key_count(settings)) > 0
    if not has_keys:
        if not _is_loopback(args.host):
            log.error(
                "refusing to listen on %s without API keys: set ASSISTANTD_API_KEYS or run "
                "`assistantd keys create --project NAME`",
                args.host,
            )
            return 2
        log.warning("no API keys configured: serving project 'default' without auth on loopback")
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=None,  # our handler (text or JSON, with request ids) formats uvicorn's lines
        access_log=args.access_log,
        timeout_graceful_shutdown=30,
        # a WebSocket message (Responses WebSocket mode) may be as large as a request body
        ws_max_size=settings.max_request_bytes,
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    log.info("listening on http://%s:%d (the API under /v1)", shown, args.port)
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def _listen(host: str, port: int) -> socket.socket | None:
    """A socket bound to `host:port`, or None after one line saying why it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        log.error("cannot listen on %s: the host does not resolve (--host): %s", host, exc)
        return None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        reason = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        log.error("cannot listen on %s port %d: %s (use another --port)", host, port, reason)
        return None
    return listener


async def _run_worker(settings: Settings) -> None:
    import signal

    from assistantd.backends.announce import announce_backends
    from assistantd.backends.chat import make_http_client
    from assistantd.backends.local import start_local_model
    from assistantd.blobs.factory import log_blob_store, make_blob_store
    from assistantd.db.engine import make_engine, make_sessionmaker
    from assistantd.ops.worker_http import WorkerHttp
    from assistantd.runs.deps import RunDeps
    from assistantd.runs.signals import Signals, listen_postgres
    from assistantd.runs.worker import Worker
    from assistantd.sandbox.readiness import ReadinessProbe
    from assistantd.tools.web_search import log_readiness as log_web_search

    engine = make_engine(settings)
    signals = Signals()
    http = make_http_client(settings)
    blobs = make_blob_store(settings)
    deps = RunDeps.build(
        settings,
        make_sessionmaker(engine, write=True),
        make_sessionmaker(engine, write=False, autocommit=True),
        signals,
        http,
        blobs,
    )
    listener = None
    if not settings.is_sqlite:
        listener = asyncio.create_task(
            listen_postgres(settings.effective_database_url, signals, run_events=False)
        )
    local_model = await start_local_model(settings, deps.models)
    worker = Worker(deps)
    worker.start()
    sandbox = ReadinessProbe(settings)
    await sandbox.log()
    await sandbox.aclose()
    await log_blob_store(blobs)
    await announce_backends(deps.models, http)
    log_web_search(settings)
    probes = None
    if settings.worker_http_port is not None:
        probes = WorkerHttp(deps.sessions, lambda: worker.healthy)
        await probes.start(settings.worker_http_host, settings.worker_http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down: finishing or handing back %d runs", worker.active_runs)
    finally:
        await worker.stop()
        if probes is not None:
            await probes.stop()
        if local_model is not None:
            await local_model.stop()
        if listener is not None:
            listener.cancel()
        await deps.backend.aclose()
        await http.aclose()
        await blobs.aclose()
        await engine.dispose()


def _worker(_: argparse.Namespace, settings: Settings) -> int:
    from assistantd.db.migrate import upgrade

    if settings.migrate_on_start:
        upgrade(settings)
    # The event loop `serve` runs on too (uvicorn picks uvloop when it is installed).
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_run_worker(settings))
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    from assistantd.db.migrate import upgrade

    upgrade(settings)
    print("database is at the latest migration")
    return 0


async def _create_key(settings: Settings, project: str) -> str:
    from assistantd.auth.keys import create_key
    from assistantd.db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine, write=True)() as session:
            key = await create_key(session, project)
            await session.commit()
            return key
    finally:
        await engine.dispose()


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from assistantd.db.migrate import upgrade

    upgrade(settings)
    key = asyncio.run(_create_key(settings, args.project))
    print(f"project: {args.project}")
    print(f"key:     {key}")
    print("This key is shown once; only its hash is stored.")
    return 0


def _sandbox_check(_: argparse.Namespace, settings: Settings) -> int:
    from assistantd.sandbox.readiness import trial

    readiness = asyncio.run(trial(settings))
    print(f"code interpreter: {readiness.status}: {readiness.detail}")
    return 0 if readiness.ready else 1


def _sandbox_ensure(_: argparse.Namespace, settings: Settings) -> int:
    """Build the image where a Docker engine is reachable and the image is missing; say what
    is missing otherwise. Never fails: the server runs without the code interpreter too."""
    import os

    from assistantd.sandbox.readiness import check_once

    readiness = asyncio.run(check_once(settings))
    if readiness.missing == "image" and os.geteuid() != 0:
        print(
            f"code interpreter: not ready: the sandbox image '{settings.sandbox_image}' is "
            "missing and its offline build needs root: run `sudo make sandbox-image` (or, "
            "where Docker Hub is reachable, `assistantd sandbox build --dockerfile`)"
        )
        return 0
    if readiness.missing == "image":
        print(
            f"code interpreter: building the sandbox image '{settings.sandbox_image}' (once; "
            "offline, about 3 minutes; `make sandbox-image` does the same)"
        )
        if _build_image(settings, force=False, dockerfile=False) != 0:
            print("code interpreter: the image build failed (above); starting without it")
            return 0
        readiness = asyncio.run(check_once(settings))
    state = "ready" if readiness.ready else "not ready"
    print(f"code interpreter: {state}: {readiness.detail}")
    return 0


def _sandbox_build(args: argparse.Namespace, settings: Settings) -> int:
    return _build_image(settings, force=args.force, dockerfile=args.dockerfile)


def _build_image(settings: Settings, *, force: bool, dockerfile: bool) -> int:
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "sandbox-image" / "build.sh"
    if not script.is_file():
        log.error(
            "sandbox-image/build.sh not found next to this installation (%s): build from a "
            "source checkout, or `docker build -t %s sandbox-image/` where a registry is "
            "reachable",
            script,
            settings.sandbox_image,
        )
        return 2
    command = ["bash", str(script), settings.sandbox_image]
    if force:
        command.append("--force")
    if dockerfile:
        command.append("--dockerfile")
    return subprocess.call(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistantd", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (and, on SQLite, the run worker)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run a standalone run worker (PostgreSQL)")
    worker.set_defaults(func=_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="mint a key for a project")
    create.add_argument("--project", required=True)
    create.set_defaults(func=_keys_create)

    sandbox = sub.add_parser("sandbox", help="the code interpreter's sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = sandbox_sub.add_parser(
        "build",
        help="build ASSISTANTD_SANDBOX_IMAGE offline (debootstrap + docker import); "
        "does nothing when it is up to date",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.add_argument(
        "--dockerfile", action="store_true", help="docker build from the Dockerfile instead"
    )
    build.set_defaults(func=_sandbox_build)
    check = sandbox_sub.add_parser(
        "check", help="say whether the code interpreter can run code here (exit 1 if not)"
    )
    check.set_defaults(func=_sandbox_check)
    ensure = sandbox_sub.add_parser(
        "ensure",
        help="build the image if a Docker engine is reachable and the image is missing "
        "(`make run` does this first); never fails",
    )
    ensure.set_defaults(func=_sandbox_ensure)
    return parser


def _load_settings() -> Settings:
    """The settings, or exit 2 with one line per bad variable (not a traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            print(f"assistantd: {_variable(error['loc'])}: {message}", file=sys.stderr)
        sys.exit(2)


def _variable(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(name)
    if field is None:
        return name if name.isupper() else f"ASSISTANTD_{name.upper()}"
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    return alias if isinstance(alias, str) else f"ASSISTANTD_{name.upper()}"


def main(argv: list[str] | None = None) -> None:
    from assistantd.db.pgvector import PgvectorUnusable

    args = build_parser().parse_args(argv)
    settings = _load_settings()
    configure_logging(settings)
    try:
        sys.exit(args.func(args, settings))
    except PgvectorUnusable as exc:  # what to install says more than a traceback
        print(f"assistantd: {exc}", file=sys.stderr)
        sys.exit(2)
