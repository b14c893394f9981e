"""All SQL for containers and container files."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as sql_delete
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistantd.db.core import get_row
from assistantd.db.models import Container, ContainerFile, File
from assistantd.kit.pagination import Page, paginate

# --- containers -----------------------------------------------------------------------------------


async def get(
    session: AsyncSession, project: str, container_id: str, *, for_update: bool = False
) -> Container | None:
    """The project's container; `for_update` locks its row (PostgreSQL), which serializes the
    changes to its files."""
    if for_update:
        row = await session.scalar(
            select(Container)
            .where(Container.id == container_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    else:
        row = await get_row(session, Container, container_id)
    if row is None or row.project != project:
        return None
    return row


async def list_page(
    session: AsyncSession, project: str, page: Page, *, name: str | None
) -> tuple[Sequence[Container], bool]:
    query = select(Container).where(Container.project == project)
    if name is not None:
        query = query.where(Container.name == name)
    return await paginate(session, query, Container.id, page)


async def add(session: AsyncSession, *rows: Container | ContainerFile) -> None:
    session.add_all(rows)
    await session.flush()


async def delete(session: AsyncSession, row: Container | ContainerFile) -> None:
    await session.delete(row)
    await session.flush()


async def touch(session: AsyncSession, container_id: str, at: int, minutes: int) -> None:
    """Mark a running container active at `at` (moves `expires_at` with it)."""
    await session.execute(
        update(Container)
        .where(Container.id == container_id, Container.status == "running")
        .values(last_active_at=at, expires_at=at + minutes * 60)
        .execution_options(synchronize_session=False)
    )


async def expiring(session: AsyncSession, at: int, limit: int) -> Sequence[Container]:
    """Up to `limit` running containers of any project whose time is up, locked."""
    query = (
        select(Container)
        .where(Container.status == "running", Container.expires_at <= at)
        .order_by(Container.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def owned_by(session: AsyncSession, project: str, owner_id: str) -> Sequence[Container]:
    """The project's containers made for `owner_id` (auto containers)."""
    query = select(Container).where(Container.project == project, Container.owner_id == owner_id)
    return (await session.scalars(query)).all()


# --- files --------------------------------------------------------------------------------------


async def get_file(
    session: AsyncSession, container_id: str, file_id: str
) -> tuple[ContainerFile, File] | None:
    """A container file with the `files` row holding its bytes."""
    row = (
        await session.execute(
            select(ContainerFile, File)
            .join(File, File.id == ContainerFile.file_id)
            .where(ContainerFile.id == file_id, ContainerFile.container_id == container_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def list_files(
    session: AsyncSession, container_id: str, page: Page
) -> tuple[Sequence[ContainerFile], bool]:
    query = select(ContainerFile).where(ContainerFile.container_id == container_id)
    return await paginate(session, query, ContainerFile.id, page)


async def files_with_rows(
    session: AsyncSession, container_id: str
) -> Sequence[tuple[ContainerFile, File]]:
    """Every file of a container with its `files` row, oldest first."""
    rows = await session.execute(
        select(ContainerFile, File)
        .join(File, File.id == ContainerFile.file_id)
        .where(ContainerFile.container_id == container_id)
        .order_by(ContainerFile.id)
    )
    return [(cfile, file) for cfile, file in rows]


async def paths(session: AsyncSession, container_id: str) -> set[str]:
    return set(
        await session.scalars(
            select(ContainerFile.path).where(ContainerFile.container_id == container_id)
        )
    )


async def by_paths(
    session: AsyncSession, container_id: str, wanted: Sequence[str]
) -> dict[str, ContainerFile]:
    if not wanted:
        return {}
    rows = await session.scalars(
        select(ContainerFile).where(
            ContainerFile.container_id == container_id, ContainerFile.path.in_(wanted)
        )
    )
    return {row.path: row for row in rows}


async def owned_files(session: AsyncSession, container_id: str) -> Sequence[File]:
    """The `files` rows made for the container (they go with it)."""
    rows = await session.scalars(
        select(File)
        .join(ContainerFile, ContainerFile.file_id == File.id)
        .where(ContainerFile.container_id == container_id, ContainerFile.owns_file.is_(True))
    )
    return rows.all()


async def delete_files(session: AsyncSession, container_id: str) -> None:
    await session.execute(
        sql_delete(ContainerFile)
        .where(ContainerFile.container_id == container_id)
        .execution_options(synchronize_session=False)
    )
