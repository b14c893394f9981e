"""At start-up, each configured model backend is named in the log, with the models it serves,
and asked once whether it answers (`GET {base_url}/models`), so an unreachable or misconfigured
backend shows up in one line when the server starts, not at the first run."""

from __future__ import annotations

import logging

import httpx

from assistantd.backends.routing import ConfiguredBackend, ModelRouter

__all__ = ["announce_backends"]

log = logging.getLogger("assistantd.backends")

_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_SHOWN_MODELS = 8


async def announce_backends(router: ModelRouter, http: httpx.AsyncClient) -> None:
    """Log every configured backend and warn, one line each, about those that do not answer."""
    for backend in router.configured():
        log.info("model backend (%s): %s, %s", backend.label, backend.base_url, _serves(backend))
        problem = await _problem(http, backend)
        if problem is None:
            log.info("model backend %s answers", backend.base_url)
        else:
            log.warning(
                "model backend %s does not answer: %s; runs and responses that use it fail "
                "until it does (%s)",
                backend.base_url,
                problem,
                backend.label,
            )


def _serves(backend: ConfiguredBackend) -> str:
    names = backend.models[:_SHOWN_MODELS]
    listed = ", ".join(names) + (" ..." if len(backend.models) > len(names) else "")
    if backend.catch_all:
        return f"models: {listed} and every other name" if names else "models: every name"
    return f"models: {listed}"


async def _problem(http: httpx.AsyncClient, backend: ConfiguredBackend) -> str | None:
    headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
    try:
        answer = await http.get(f"{backend.base_url}/models", headers=headers, timeout=_TIMEOUT)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return f"its URL is invalid ({exc})"
    except httpx.ConnectTimeout:
        return "no connection within 3 s"
    except httpx.TimeoutException:
        return "no answer within 5 s"
    except httpx.TransportError as exc:
        return f"cannot connect ({str(exc) or type(exc).__name__})"
    if answer.status_code in (401, 403):
        return f"it refuses the API key (HTTP {answer.status_code})"
    if answer.status_code >= 500:
        return f"it answers HTTP {answer.status_code}"
    # Any other answer (a 404 from a server without /models included) is a server that is up.
    return None
