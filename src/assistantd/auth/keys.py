"""Key hashing, minting, and the resolver the API uses on every request."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from assistantd.db.models import ApiKey
from assistantd.errors import AuthenticationError
from assistantd.kit.ids import Prefix, new_id
from assistantd.kit.timeutil import now
from assistantd.settings import DEFAULT_PROJECT

_CACHE_SECONDS = 30.0


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(session: AsyncSession, project: str) -> str:
    """Mint a key for `project`; the plain key is returned once and never stored."""
    key = "sk-" + secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=new_id(Prefix.API_KEY),
            project=project,
            key_hash=hash_key(key),
            hint=key[:7],
            created_at=now(),
        )
    )
    await session.flush()
    return key


class KeyResolver:
    """Maps a presented key to its project.

    Keys from `ASSISTANTD_API_KEYS` are checked in memory; keys minted by the CLI are looked up
    in the database and remembered for a short while, so a hot path costs no query.
    """

    def __init__(
        self, static_keys: dict[str, str], sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        self._static = {hash_key(k): p for k, p in static_keys.items()}
        self._sessions = sessions
        self._cache: dict[str, tuple[str, float]] = {}
        self._open: bool | None = None
        self._open_checked = 0.0

    async def is_open(self) -> bool:
        """True when no key exists anywhere: the server then serves project `default` unauthed."""
        if self._static:
            return False
        if self._open is False:
            return False
        if time.monotonic() - self._open_checked > _CACHE_SECONDS or self._open is None:
            async with self._sessions() as session:
                count = await session.scalar(select(func.count()).select_from(ApiKey))
            self._open = not count
            self._open_checked = time.monotonic()
        return bool(self._open)

    async def project_for(self, key: str) -> str | None:
        digest = hash_key(key)
        project = self._static.get(digest)
        if project is not None:
            return project
        cached = self._cache.get(digest)
        if cached and time.monotonic() - cached[1] < _CACHE_SECONDS:
            return cached[0]
        async with self._sessions() as session:
            project = await session.scalar(select(ApiKey.project).where(ApiKey.key_hash == digest))
        if project is not None:
            self._cache[digest] = (project, time.monotonic())
            self._open = False
        return project


# Where the request's project is kept once authenticated (an ASGI scope key).
PROJECT_SCOPE_KEY = "assistantd.project"


def presented_keys(authorization: str | None, api_key: str | None) -> list[str]:
    """The keys a request presents: a bearer token, then an `api-key` header (Azure's)."""
    keys: list[str] = []
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            keys.append(token.strip())
    if api_key and api_key.strip():
        keys.append(api_key.strip())
    return keys


def _redact(key: str) -> str:
    return key if len(key) <= 8 else f"{key[:3]}*****{key[-4:]}"


async def authenticate(
    resolver: KeyResolver, authorization: str | None, api_key: str | None
) -> str:
    """The project of the presented key (`default` on an open server); 401 otherwise."""
    keys = presented_keys(authorization, api_key)
    if not keys:
        if await resolver.is_open():
            return DEFAULT_PROJECT
        raise AuthenticationError(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
            "or in an api-key header."
        )
    # A client may send both (a placeholder bearer beside the real `api-key`): either will do.
    for key in keys:
        project = await resolver.project_for(key)
        if project is not None:
            return project
    if await resolver.is_open():
        return DEFAULT_PROJECT
    raise AuthenticationError(
        f"Incorrect API key provided: {_redact(keys[0])}.", code="invalid_api_key"
    )
