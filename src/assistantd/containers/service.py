"""Container use cases: create (named or `auto`), look up, use, delete, expire.

A container is `running` until `expires_after.minutes` pass without activity (creating it,
adding files, a response using it, code running in it); then it is `expired`: its sandbox and
files are discarded and a response naming it gets OpenAI's 400. Expiry is decided by the clock
on every read and carried out by a sweep (`containers.expiry`); neither waits for the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from assistantd.containers import repository
from assistantd.containers.schemas import (
    DEFAULT_EXPIRY_MINUTES,
    DEFAULT_MEMORY_LIMIT,
    MAX_FILE_IDS,
    ContainerCreate,
    ContainerFileSource,
    ContainerMemoryLimit,
    ContainerObject,
    ContainerStatus,
    ExpiresAfterObject,
    NetworkPolicyAllowlist,
    NetworkPolicyObject,
)
from assistantd.db.models import Container, ContainerFile, File
from assistantd.errors import InvalidRequestError, NotFoundError
from assistantd.files import repository as files_repository
from assistantd.files import service as files
from assistantd.kit.ids import Prefix, check_prefix, created_at_of, new_id
from assistantd.kit.pagination import Page
from assistantd.kit.timeutil import now
from assistantd.sandbox.names import safe_name, unique_name
from assistantd.settings import Settings

AUTO_NAME = "auto"
DATA_DIR = "/mnt/data/"

# What each `memory_limit` asks for, in MiB (see `memory_mb`).
MEMORY_TIERS_MB: dict[str, int] = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}


def memory_mb(settings: Settings, memory_limit: str) -> int:
    """The sandbox memory of a container's `memory_limit`: 1g is the server's default sandbox
    size (ASSISTANTD_SANDBOX_MEMORY_MB), larger tiers their size but at least that, capped by
    ASSISTANTD_SANDBOX_MAX_MEMORY_MB (a cap never below the default)."""
    default = settings.sandbox_memory_mb
    if memory_limit == DEFAULT_MEMORY_LIMIT:
        return default
    cap = max(settings.sandbox_max_memory_mb, default)
    return min(max(MEMORY_TIERS_MB[memory_limit], default), cap)


def is_expired(row: Container) -> bool:
    """Its time is up (whether or not the sweep has carried that out yet)."""
    return row.status == "expired" or row.expires_at <= now()


def render(row: Container) -> ContainerObject:
    status: ContainerStatus = "expired" if is_expired(row) else "running"
    return ContainerObject(
        id=row.id,
        created_at=row.created_at,
        status=status,
        expires_after=ExpiresAfterObject.model_validate(row.expires_after),
        last_active_at=row.last_active_at,
        memory_limit=cast(ContainerMemoryLimit, row.memory_limit),
        network_policy=NetworkPolicyObject(type="disabled"),
        name=row.name,
    )


def not_found(container_id: str) -> NotFoundError:
    return NotFoundError(f"Container with id '{container_id}' not found.")


def expired_error() -> InvalidRequestError:
    """OpenAI's answer to a request that names an expired container."""
    return InvalidRequestError("Container is expired.")


async def require(session: AsyncSession, project: str, container_id: str) -> Container:
    """The project's container, expired or not; 404 otherwise."""
    check_prefix(container_id, Prefix.CONTAINER, "container_id")
    row = await repository.get(session, project, container_id)
    if row is None:
        raise not_found(container_id)
    return row


async def require_live(
    session: AsyncSession,
    project: str,
    container_id: str,
    *,
    for_update: bool = False,
    param: str = "container_id",
) -> Container:
    """The project's running container: 404 if unknown, OpenAI's 400 if expired."""
    check_prefix(container_id, Prefix.CONTAINER, param)
    row = await repository.get(session, project, container_id, for_update=for_update)
    if row is None:
        raise not_found(container_id)
    if is_expired(row):
        raise expired_error()
    return row


async def touch(session: AsyncSession, row: Container) -> None:
    """Mark the container active now."""
    stamp = now()
    minutes = int(row.expires_after["minutes"])
    await repository.touch(session, row.id, stamp, minutes)
    # What the UPDATE wrote, without marking the object changed (no second UPDATE on flush).
    set_committed_value(row, "last_active_at", stamp)
    set_committed_value(row, "expires_at", stamp + minutes * 60)


async def use(
    session: AsyncSession, project: str, container_id: str, *, param: str = "container_id"
) -> Container:
    """The container a response names, marked active: 404 when it is not the project's,
    OpenAI's 400 `Container is expired.` when its time is up, a 400 naming `param` (e.g.
    `tools[0].container`) for an id that is not a container's."""
    row = await require_live(session, project, container_id, param=param)
    await touch(session, row)
    return row


async def create(session: AsyncSession, project: str, body: ContainerCreate) -> Container:
    """`POST /containers`: a new running container with copies of `file_ids` as user files."""
    if body.skills:
        raise InvalidRequestError(
            "Invalid 'skills': skills are not supported by this server.", param="skills"
        )
    if isinstance(body.network_policy, NetworkPolicyAllowlist):
        raise InvalidRequestError(
            "Invalid 'network_policy.type': 'allowlist'. Sandboxes on this server have no "
            "network access; the only supported value is 'disabled'.",
            param="network_policy.type",
        )
    minutes = body.expires_after.minutes if body.expires_after else DEFAULT_EXPIRY_MINUTES
    return await _create(
        session,
        project,
        name=body.name,
        file_ids=body.file_ids or [],
        memory_limit=body.memory_limit or DEFAULT_MEMORY_LIMIT,
        minutes=minutes,
        param="file_ids",
    )


async def create_auto(
    session: AsyncSession,
    project: str,
    *,
    file_ids: Sequence[str] | None,
    memory_limit: str | None,
    name: str = AUTO_NAME,
    param: str = "file_ids",
    owner_id: str | None = None,
) -> Container:
    """A container for a code_interpreter tool's `{"type": "auto", ...}`, with OpenAI's
    default expiry (20 minutes unused), deleted with `owner_id` (see `delete_owned`). `param`
    names `file_ids` in errors, e.g. `tools[0].container.file_ids`."""
    wanted = list(file_ids or [])
    if len(wanted) > MAX_FILE_IDS:
        raise InvalidRequestError(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{MAX_FILE_IDS}, but got an array with length {len(wanted)} instead.",
            param=param,
        )
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    if limit not in MEMORY_TIERS_MB:  # the caller's schema refuses these already
        raise InvalidRequestError(
            f"Invalid 'memory_limit': '{limit}'. Supported values are: '1g', '4g', '16g', "
            "and '64g'.",
            param="memory_limit",
        )
    return await _create(
        session,
        project,
        name=name,
        file_ids=wanted,
        memory_limit=limit,
        minutes=DEFAULT_EXPIRY_MINUTES,
        param=param,
        owner_id=owner_id,
    )


async def _create(
    session: AsyncSession,
    project: str,
    *,
    name: str,
    file_ids: list[str],
    memory_limit: str,
    minutes: int,
    param: str,
    owner_id: str | None = None,
) -> Container:
    container_id = new_id(Prefix.CONTAINER)
    created_at = created_at_of(container_id)
    row = Container(
        id=container_id,
        project=project,
        created_at=created_at,
        name=name,
        status="running",
        last_active_at=created_at,
        expires_after={"anchor": "last_active_at", "minutes": minutes},
        expires_at=created_at + minutes * 60,
        memory_limit=memory_limit,
        owner_id=owner_id,
    )
    await repository.add(session, row)
    await add_by_ids(session, row, file_ids, param=param)
    return row


# --- files ------------------------------------------------------------------------------------


def free_path(filename: str, fallback: str, taken: set[str]) -> str:
    """A path for a new file under /mnt/data: its name made safe (as the code interpreter names
    thread files) and unique among `taken` (`data.csv`, `data-2.csv`); added to `taken`."""
    names = {path.removeprefix(DATA_DIR) for path in taken}
    path = DATA_DIR + unique_name(safe_name(filename, fallback), names)
    taken.add(path)
    return path


def file_row(
    container: Container, file: File, path: str, source: ContainerFileSource, *, owns_file: bool
) -> ContainerFile:
    row_id = new_id(Prefix.CONTAINER_FILE)
    return ContainerFile(
        id=row_id,
        project=container.project,
        created_at=created_at_of(row_id),
        container_id=container.id,
        file_id=file.id,
        path=path,
        source=source,
        bytes=file.bytes,
        owns_file=owns_file,
    )


async def add_by_ids(
    session: AsyncSession, container: Container, file_ids: Sequence[str], *, param: str
) -> list[ContainerFile]:
    """Copy files of the project into the container as user files (in order, once each)."""
    for index, file_id in enumerate(file_ids):
        check_prefix(file_id, Prefix.FILE, param if param == "file_id" else f"{param}[{index}]")
    taken = await repository.paths(session, container.id)
    rows = []
    for file_id in dict.fromkeys(file_ids):
        file = await files_repository.get(session, container.project, file_id)
        if file is None:
            raise InvalidRequestError(
                f"No file found with id '{file_id}'.", param=param, code="invalid_file_id"
            )
        path = free_path(file.filename, file.id, taken)
        rows.append(file_row(container, file, path, "user", owns_file=False))
    await repository.add(session, *rows)
    return rows


async def list_page(
    session: AsyncSession, project: str, page: Page, name: str | None
) -> tuple[Sequence[Container], bool]:
    return await repository.list_page(session, project, page, name=name)


async def discard_files(session: AsyncSession, row: Container) -> list[str]:
    """Delete the `files` rows made for the container; returns their blob keys, to remove once
    the transaction has committed. (Its `container_files` rows go by cascade.)"""
    owned = await repository.owned_files(session, row.id)
    return [await files.delete(session, file) for file in owned]


async def expire(session: AsyncSession, row: Container) -> list[str]:
    """Mark the container expired and discard its files (OpenAI: an expired container's data
    is gone); returns the blob keys to remove once the transaction has committed. The caller
    removes its sandbox."""
    row.status = "expired"
    keys = await discard_files(session, row)
    await repository.delete_files(session, row.id)
    await session.flush()
    return keys


async def delete(session: AsyncSession, row: Container) -> list[str]:
    """Delete the container and the files made for it; returns the blob keys to remove once
    the transaction has committed. The caller removes its sandbox."""
    keys = await discard_files(session, row)
    await repository.delete(session, row)
    return keys


async def delete_owned(session: AsyncSession, project: str, owner_id: str) -> OwnedDeletion:
    """Delete the auto containers made for `owner_id` (a conversation or a response being
    deleted) and their files. The caller removes their sandboxes and blobs after commit."""
    deleted = OwnedDeletion()
    for row in await repository.owned_by(session, project, owner_id):
        deleted.blob_keys.extend(await delete(session, row))
        deleted.container_ids.append(row.id)
    return deleted


@dataclass
class OwnedDeletion:
    container_ids: list[str] = field(default_factory=list)  # their sandboxes go too
    blob_keys: list[str] = field(default_factory=list)  # to remove once committed
