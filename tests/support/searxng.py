"""A stand-in for a SearxNG instance on loopback: its JSON search API (`/search?q=...&format=json`,
SearxNG's real response shape) and a few web pages to open, over real HTTP.

    searx = FakeSearx().start()        # searx.url == "http://127.0.0.1:PORT"
    searx.page_url("lighthouse")       # a page its results point to
    searx.queries                      # the query parameters of every search, in order
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import is_postgres
from tests.runs.conftest import TUNED_KEY, Tuned, fresh_database
from tests.support.server import LiveServer

LIGHTHOUSE = """<!doctype html><html><head><title>Lighthouse facts</title>
<style>body { color: red }</style><script>var hidden = "script text";</script></head>
<body><h1>Lighthouse facts</h1>
<p>The lamp is lit thirty minutes before sunset.</p>
<p>In fog the fog horn sounds two long blasts every minute.</p>
<p>The keeper logs every ship that passes.</p></body></html>"""
HARBOUR = "Harbour rules.\nBoats moor at the north pier.\nThe fog horn is tested on Mondays.\n"
# Twelve results: two pages here, the rest elsewhere (never opened).
RESULTS = [
    ("lighthouse", "Lighthouse facts", "When the lamp is lit, and the fog horn."),
    ("harbour", "Harbour rules", "Where boats moor."),
    *[
        (f"https://site{n}.example.org/page{n}", f"Result {n}", f"Snippet number {n}. " * 40)
        for n in range(10)
    ],
]


class FakeSearx:
    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        self.big_page = "<html><body><p>" + "word " * 20_000 + "</p><p>needle at the end</p>"
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def page_url(self, name: str) -> str:
        return f"{self.url}/pages/{name}"

    def results(self) -> list[dict[str, Any]]:
        out = []
        for position, (where, title, content) in enumerate(RESULTS, start=1):
            url = where if where.startswith("https://") else self.page_url(where)
            parsed = urlsplit(url)
            out.append(
                {
                    "url": url,
                    "title": title,
                    "content": content,
                    "engine": "duckduckgo",
                    "parsed_url": [parsed.scheme, parsed.netloc, parsed.path, "", "", ""],
                    "template": "default.html",
                    "engines": ["duckduckgo", "brave"],
                    "positions": [position],
                    "score": 2.0 / position,
                    "category": "general",
                    "publishedDate": None,
                    "thumbnail": None,
                }
            )
        return out

    def start(self) -> FakeSearx:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/search":
                    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    fake.queries.append(params)
                    if params.get("format") != "json":
                        self._send(403, b"Forbidden", "text/plain")  # SearxNG's answer
                        return
                    if "explode" in params.get("q", ""):  # an engine failing
                        self._send(500, b"Internal Server Error", "text/plain")
                        return
                    answer = {
                        "query": params.get("q", ""),
                        "number_of_results": 0,
                        "results": fake.results(),
                        "answers": [],
                        "corrections": [],
                        "infoboxes": [],
                        "suggestions": [],
                        "unresponsive_engines": [],
                    }
                    self._send(200, json.dumps(answer).encode(), "application/json")
                elif parts.path == "/pages/lighthouse":
                    self._send(200, LIGHTHOUSE.encode(), "text/html; charset=utf-8")
                elif parts.path == "/pages/harbour":
                    self._send(200, HARBOUR.encode(), "text/plain")
                elif parts.path == "/pages/big":
                    self._send(200, fake.big_page.encode(), "text/html")
                elif parts.path == "/pages/to-metadata":
                    location = "http://169.254.169.254/latest/meta-data/"
                    self._send(302, b"", "text/plain", Location=location)
                else:
                    self._send(404, b"not found", "text/plain")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def web_search_server(
    server_env: dict[str, str], work_dir: Path, searx: FakeSearx, name: str = "web-search"
) -> Tuned:
    """A server (with, on PostgreSQL, a worker) on a database of its own, whose web search is
    `searx`; pages on 127.0.0.1 may be opened. Its client's key is `TUNED_KEY`."""
    database_url = fresh_database(server_env["ASSISTANTD_DATABASE_URL"], work_dir)
    postgres = is_postgres(database_url)
    env = {
        **server_env,
        "ASSISTANTD_DATABASE_URL": database_url,
        "ASSISTANTD_DATA_DIR": str(work_dir / f"data-{name}"),
        "ASSISTANTD_API_KEYS": f"tuned:{TUNED_KEY}",
        "ASSISTANTD_DB_POOL_SIZE": "4",
        "ASSISTANTD_EMBEDDED_WORKER": "false" if postgres else "true",
        "ASSISTANTD_WEB_SEARCH_URL": searx.url,
        "ASSISTANTD_OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "ASSISTANTD_WEB_SEARCH_TIMEOUT_SECONDS": "5",
    }
    api = LiveServer(env, work_dir / f"{name}.log").start()
    return Tuned(api, env, work_dir, 1 if postgres else 0)
