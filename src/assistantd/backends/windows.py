"""How large a model's context window is: the models file says, else its backend does, else
`ASSISTANTD_MODEL_CONTEXT_WINDOW`; when nobody knows, it is unknown (None), and no prompt is
measured against a guess: the backend's own context-length error fails the turn instead
(`failures.py`: `context_length_exceeded`).

A backend is asked once per route (its URL and upstream model), the first time the route serves
a turn, and the answer (a window or none) is kept for the life of the process; a backend that
cannot be reached is asked again after a minute. What backends tell:

- vLLM: `GET /v1/models`, the model's `max_model_len`;
- llama.cpp's server: `GET /props` (at the server's root), `default_generation_settings.n_ctx`
  (the context of one slot), else the model's `meta.n_ctx_train` in `/v1/models`;
- Ollama: `POST /api/show`, the `num_ctx` of the model's parameters if it sets one, else its
  `model_info["<architecture>.context_length"]`;
- others (OpenAI's `/v1/models` and most servers): nothing; `context_length`,
  `context_window` or `max_context_length` on the model entry are read if a server adds them.

In `/v1/models` the entry whose `id` is the upstream model counts, or the only entry of a server
that lists one model (llama.cpp serves its one model under any name).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from assistantd.backends.routing import ModelRoute
from assistantd.settings import Settings

__all__ = ["ContextWindows"]

log = logging.getLogger(__name__)

_RETRY_UNREACHABLE_SECONDS = 60.0
_ENTRY_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


class ContextWindows:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._default = settings.model_context_window
        self._timeout = httpx.Timeout(settings.model_connect_timeout_seconds, read=10.0)
        # (base URL, upstream model) -> (window or None, monotonic time it expires or None)
        self._known: dict[tuple[str, str], tuple[int | None, float | None]] = {}
        self._asking: dict[tuple[str, str], asyncio.Task[tuple[int | None, bool]]] = {}

    async def of(self, route: ModelRoute) -> int | None:
        """The route's context window in tokens, or None when nobody knows it."""
        if route.context_window is not None:
            return route.context_window
        discovered = await self.discovered(route)
        return discovered if discovered is not None else self._default

    async def discovered(self, route: ModelRoute) -> int | None:
        """What the route's backend says its window is (asked once), or None."""
        key = (route.base_url, route.upstream_model)
        known = self._known.get(key)
        if known is not None and (known[1] is None or known[1] > time.monotonic()):
            return known[0]
        task = self._asking.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ask(route))
            self._asking[key] = task
            task.add_done_callback(lambda _: self._asking.pop(key, None))
        window, answered = await asyncio.shield(task)
        expires = None if answered else time.monotonic() + _RETRY_UNREACHABLE_SECONDS
        self._known[key] = (window, expires)
        return window

    async def _ask(self, route: ModelRoute) -> tuple[int | None, bool]:
        """(the window, whether the backend answered at all)."""
        headers = {"Authorization": f"Bearer {route.api_key}"} if route.api_key else {}
        try:
            models = await self._get_json(f"{route.base_url}/models", headers)
            entry = _entry(models, route.upstream_model)
            window = _from_entry(entry)
            if window is None and entry is not None and isinstance(entry.get("meta"), dict):
                window = await self._llama_cpp(route, headers, entry["meta"])
            if window is None:
                window = await self._ollama(route, headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.warning("could not ask %s for its context window: %r", route.base_url, exc)
            return None, False
        if window is not None:
            log.info("%s at %s: context window %d", route.upstream_model, route.base_url, window)
        return window, True

    async def _get_json(self, url: str, headers: dict[str, str]) -> Any:
        response = await self._http.get(url, headers=headers, timeout=self._timeout)
        return _json(response)

    async def _llama_cpp(
        self, route: ModelRoute, headers: dict[str, str], meta: dict[str, Any]
    ) -> int | None:
        props = await self._get_json(f"{_root(route.base_url)}/props", headers)
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            window = _positive(settings.get("n_ctx") if isinstance(settings, dict) else None)
            if window is not None:
                return window
        return _positive(meta.get("n_ctx_train"))

    async def _ollama(self, route: ModelRoute, headers: dict[str, str]) -> int | None:
        response = await self._http.post(
            f"{_root(route.base_url)}/api/show",
            json={"model": route.upstream_model},
            headers=headers,
            timeout=self._timeout,
        )
        shown = _json(response)
        if not isinstance(shown, dict):
            return None
        for line in str(shown.get("parameters") or "").splitlines():
            name, _, value = line.strip().partition(" ")
            if name == "num_ctx":
                window = _positive(value.strip())
                if window is not None:
                    return window
        info = shown.get("model_info")
        if not isinstance(info, dict):
            return None
        architecture = info.get("general.architecture")
        return _positive(info.get(f"{architecture}.context_length"))


def _json(response: httpx.Response) -> Any:
    if not response.is_success:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _entry(models: Any, upstream: str) -> dict[str, Any] | None:
    data = models.get("data") if isinstance(models, dict) else None
    if not isinstance(data, list):
        return None
    entries = [entry for entry in data if isinstance(entry, dict)]
    for entry in entries:
        if entry.get("id") == upstream:
            return entry
    return entries[0] if len(entries) == 1 else None


def _from_entry(entry: dict[str, Any] | None) -> int | None:
    if entry is None:
        return None
    for key in _ENTRY_KEYS:
        window = _positive(entry.get(key))
        if window is not None:
            return window
    return None


def _positive(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _root(base_url: str) -> str:
    """The server's root: `http://host:8080/v1` -> `http://host:8080`."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url
