"""What the code interpreter needs from a container: its sandbox size, the user files to copy
into /mnt/data, and the container files made from what the code wrote."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.containers import repository, service
from assistantd.containers.service import DATA_DIR
from assistantd.db.models import Container, File
from assistantd.files import repository as files_repository
from assistantd.files import service as files
from assistantd.settings import Settings


@dataclass
class ContainerInputs:
    container: Container
    memory_mb: int  # the sandbox's memory limit
    # The user files, oldest first: (container file id, name under /mnt/data, its bytes' row).
    files: list[tuple[str, str, File]] = field(default_factory=list)
    present: set[str] = field(default_factory=set)  # the ids of all its files, either source


async def inputs(
    session: AsyncSession, settings: Settings, project: str, container_id: str
) -> ContainerInputs:
    """The running container's sandbox inputs (404 if unknown, 400 if expired)."""
    container = await service.require_live(session, project, container_id)
    found = ContainerInputs(container, service.memory_mb(settings, container.memory_limit))
    for cfile, file in await repository.files_with_rows(session, container.id):
        found.present.add(cfile.id)
        if cfile.source == "user":
            found.files.append((cfile.id, cfile.path.removeprefix(DATA_DIR), file))
    return found


@dataclass
class RecordedOutputs:
    by_path: dict[str, str] = field(default_factory=dict)  # /mnt/data path -> container file id
    blob_keys: list[str] = field(default_factory=list)  # to remove after commit (replaced bytes)


async def record_outputs(
    session: AsyncSession, project: str, container_id: str, outputs: list[tuple[str, File]]
) -> RecordedOutputs:
    """Container files (source `assistant`) for what the code wrote, as (path relative to
    /mnt/data, its new `files` row); marks the container active. A path the container already
    has keeps its container file id (and source) with the new bytes. Nothing is recorded for a
    container deleted or expired meanwhile (the rows stay plain output files)."""
    recorded = RecordedOutputs()
    container = await repository.get(session, project, container_id, for_update=True)
    if container is None or service.is_expired(container):
        return recorded
    paths = [DATA_DIR + relative for relative, _ in outputs]
    existing = await repository.by_paths(session, container.id, paths)
    new = []
    for path, (_, file) in zip(paths, outputs, strict=True):
        row = existing.get(path)
        if row is None:
            row = service.file_row(container, file, path, "assistant", owns_file=True)
            existing[path] = row
            new.append(row)
        else:
            replaced, was_owned = row.file_id, row.owns_file
            row.file_id, row.bytes, row.owns_file = file.id, file.bytes, True
            await session.flush()  # off the old row before it goes (its delete cascades)
            if was_owned:
                old = await files_repository.get(session, project, replaced)
                if old is not None:
                    recorded.blob_keys.append(await files.delete(session, old))
        recorded.by_path[path] = row.id
    await repository.add(session, *new)
    await service.touch(session, container)
    return recorded
