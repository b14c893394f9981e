"""The model names this server answers to, as OpenAI's Models API lists them.

A name routed by the models file is listed as it is; a backend that takes every other name (the
default backend, or the models file's `default:`) contributes what its own `GET /models` lists,
asked at most once a minute; the embedded model is listed under its name. Clients such as IDEs
and older Codex versions read this list to offer a model picker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from assistantd.backends.routing import ConfiguredBackend, ModelRouter
from assistantd.errors import NotFoundError
from assistantd.models.schemas import ModelObject
from assistantd.settings import Settings

log = logging.getLogger(__name__)

_LISTING_SECONDS = 60.0
_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_OURS = "assistantd"


@dataclass
class _Listing:
    models: list[ModelObject] | None  # None: the backend lists nothing we could read
    expires: float


class ModelCatalog:
    def __init__(self, router: ModelRouter, http: httpx.AsyncClient, settings: Settings) -> None:
        self._router = router
        self._http = http
        self._local_name = settings.local_model_name
        self._started = int(time.time())
        self._listings: dict[str, _Listing] = {}
        self._lock = asyncio.Lock()

    async def listed(self) -> list[ModelObject]:
        if self._router.local_wanted:
            return [self._ours(self._local_name)]
        found: dict[str, ModelObject] = {}
        for backend in self._router.configured():
            for name in backend.models:
                found.setdefault(name, self._ours(name))
            if backend.catch_all:
                for model in await self._listing(backend) or []:
                    found.setdefault(model.id, model)
        return sorted(found.values(), key=lambda model: model.id)

    async def retrieve(self, name: str) -> ModelObject:
        """The model `name`: listed, or served by a backend that lists nothing; else 404."""
        for model in await self.listed():
            if model.id == name:
                return model
        if self._router.can_serve(name) and not self._router.local_wanted:
            for backend in self._router.configured():
                if backend.catch_all and await self._listing(backend) is None:
                    return self._ours(name)
        raise NotFoundError(
            f"The model '{name}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )

    def _ours(self, name: str) -> ModelObject:
        return ModelObject(id=name, created=self._started, owned_by=_OURS)

    async def _listing(self, backend: ConfiguredBackend) -> list[ModelObject] | None:
        async with self._lock:
            known = self._listings.get(backend.base_url)
            if known is None or known.expires < time.monotonic():
                known = _Listing(await self._ask(backend), time.monotonic() + _LISTING_SECONDS)
                self._listings[backend.base_url] = known
            return known.models

    async def _ask(self, backend: ConfiguredBackend) -> list[ModelObject] | None:
        headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
        try:
            answer = await self._http.get(
                f"{backend.base_url}/models", headers=headers, timeout=_TIMEOUT
            )
            body = answer.json() if answer.is_success else None
        except (httpx.HTTPError, ValueError) as exc:
            log.info("model backend %s lists no models: %r", backend.base_url, exc)
            return None
        entries = body.get("data") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            return None
        models = []
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
                created = entry.get("created")
                owner = entry.get("owned_by")
                models.append(
                    ModelObject(
                        id=entry["id"],
                        created=created if isinstance(created, int) else self._started,
                        owned_by=owner if isinstance(owner, str) and owner else "backend",
                    )
                )
        return models
