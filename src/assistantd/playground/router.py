"""Serves the playground's static files (package data) at `/playground` and `/playground/...`.

The page is plain HTML, CSS and ES modules: no build step. It calls the public API (`/v1/...`)
with the key typed into it, so it sees exactly what that key's project may see; this router
only serves files and says whether the server asks for a key.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assistantd.auth.keys import KeyResolver
from assistantd.errors import NotFoundError

router = APIRouter(include_in_schema=False)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Everything the page loads comes from here or /v1; images are blob: URLs of fetched files.
_SECURITY = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # The files change with the package; a reload after an upgrade must not mix versions.
    "cache-control": "no-cache",
}


@cache
def _assets() -> dict[str, bytes]:
    """The static files by name, read once (a handful of small files)."""
    folder = resources.files(__package__).joinpath("static")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and entry.name[entry.name.rfind(".") :] in _TYPES
    }


def _serve(name: str) -> Response:
    body = _assets().get(name)
    if body is None:
        raise NotFoundError(f"No playground file {name!r}.")
    return Response(body, media_type=_TYPES[name[name.rfind(".") :]], headers=_SECURITY)


@router.api_route("/playground", methods=["GET", "HEAD"])
@router.api_route("/playground/", methods=["GET", "HEAD"])
async def page() -> Response:
    """The playground page."""
    return _serve("index.html")


@router.get("/playground/config.json")
async def config(request: Request) -> JSONResponse:
    """Whether the page must ask for an API key (no key exists: open mode on loopback)."""
    keys: KeyResolver = request.app.state.keys
    return JSONResponse({"api_key_required": not await keys.is_open()}, headers=_SECURITY)


@router.api_route("/playground/{name}", methods=["GET", "HEAD"])
async def asset(name: str) -> Response:
    """A static file of the playground (modules, style sheet)."""
    return _serve(name)
