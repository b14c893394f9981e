"""Cursor pagination, as properties: after any creates and deletes, any page request agrees with
a model of the list (the live objects sorted by creation), and walking pages forwards with
`after` or backwards with `before` yields every live object exactly once, in order.

The server is a live process; each example works in a fresh project (and thread), through raw
HTTP so that the exact JSON (`first_id`, `last_id`, `has_more`) is what is checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    # Hypothesis imports this (and libcst, which warns on import) only to report a failing
    # example; with `filterwarnings = error` that import would crash pytest instead.
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

from tests.support.server import LiveServer

Order = Literal["asc", "desc"]

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Collection:
    """One list endpoint in one fresh project, and the model of what it should hold."""

    http: httpx.Client
    path: str
    body: dict[str, Any]
    created: list[str] = field(default_factory=list)  # every id ever made, live or not
    live: set[str] = field(default_factory=set)

    def create(self) -> None:
        response = self.http.post(self.path, json=self.body)
        assert response.status_code == 200, response.text
        object_id = response.json()["id"]
        self.created.append(object_id)
        self.live.add(object_id)

    def delete(self, index: int) -> None:
        object_id = self.created[index % len(self.created)]
        response = self.http.delete(f"{self.path}/{object_id}")
        assert response.status_code == (200 if object_id in self.live else 404), response.text
        self.live.discard(object_id)

    def ordered(self, order: Order) -> list[str]:
        ids = sorted(self.live)  # ids sort by creation
        return ids if order == "asc" else ids[::-1]

    def page(self, **params: Any) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v is not None}
        response = self.http.get(self.path, params=query)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
        assert body["object"] == "list"
        ids = [item["id"] for item in body["data"]]
        assert body["first_id"] == (ids[0] if ids else None)
        assert body["last_id"] == (ids[-1] if ids else None)
        return body

    def expected(
        self, order: Order, limit: int, after: str | None, before: str | None
    ) -> tuple[list[str], bool]:
        """The model: ids strictly between the cursors in list order; with only `before`, the
        `limit` nearest to it."""
        ids = self.ordered(order)
        follows = (lambda a, b: a > b) if order == "asc" else (lambda a, b: a < b)
        if after is not None:
            ids = [i for i in ids if follows(i, after)]
        if before is not None:
            ids = [i for i in ids if follows(before, i)]
        if before is not None and after is None:
            return ids[-limit:] if limit < len(ids) else ids, len(ids) > limit
        return ids[:limit], len(ids) > limit


@pytest.fixture
def http_for(server: LiveServer) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(key: str) -> httpx.Client:
        c = httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {key}"})
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def fresh_collection(
    kind: str, new_key: Callable[[], str], http_for: Callable[[str], httpx.Client]
) -> Collection:
    http = http_for(new_key())
    if kind == "assistants":
        return Collection(http, "/assistants", {"model": "m"})
    thread = http.post("/threads", json={})
    assert thread.status_code == 200, thread.text
    path = f"/threads/{thread.json()['id']}/messages"
    return Collection(http, path, {"role": "user", "content": "hi"})


# An operation: None creates, an int deletes the object created at that index (modulo).
operations = st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=0, max_size=14)
orders = st.sampled_from(["asc", "desc"])
limits = st.one_of(st.integers(1, 6), st.just(100))
# A cursor: None, or the index (modulo) of any object ever created, live or deleted.
cursors = st.one_of(st.none(), st.integers(0, 50))


def apply(collection: Collection, ops: list[int | None]) -> None:
    for op in ops:
        if op is None or not collection.created:
            collection.create()
        else:
            collection.delete(op)


def cursor(collection: Collection, index: int | None) -> str | None:
    if index is None or not collection.created:
        return None
    return collection.created[index % len(collection.created)]


KINDS = ["assistants", "messages"]


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY_SETTINGS
@given(
    ops=operations,
    queries=st.lists(st.tuples(orders, limits, cursors, cursors), min_size=1, max_size=6),
)
def test_any_page_matches_the_model(
    kind: str,
    new_key: Callable[[], str],
    http_for: Callable[[str], httpx.Client],
    ops: list[int | None],
    queries: list[tuple[Order, int, int | None, int | None]],
) -> None:
    collection = fresh_collection(kind, new_key, http_for)
    apply(collection, ops)
    for order, limit, after_index, before_index in queries:
        after, before = cursor(collection, after_index), cursor(collection, before_index)
        body = collection.page(order=order, limit=limit, after=after, before=before)
        ids, has_more = collection.expected(order, limit, after, before)
        assert [item["id"] for item in body["data"]] == ids, (order, limit, after, before)
        assert body["has_more"] is has_more, (order, limit, after, before)


@pytest.mark.parametrize("kind", KINDS)
@PROPERTY_SETTINGS
@given(ops=operations, order=orders, limit=st.integers(1, 5))
def test_walks_visit_everything_once(
    kind: str,
    new_key: Callable[[], str],
    http_for: Callable[[str], httpx.Client],
    ops: list[int | None],
    order: Order,
    limit: int,
) -> None:
    collection = fresh_collection(kind, new_key, http_for)
    apply(collection, ops)
    everything = collection.ordered(order)

    # forwards, as the SDK's auto-pagination does: after = the last id of the page
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        body = collection.page(order=order, limit=limit, after=after)
        ids = [item["id"] for item in body["data"]]
        assert len(ids) <= limit
        pages.append(ids)
        if not body["has_more"]:
            break
        assert len(ids) == limit  # a short page never claims more
        after = ids[-1]
        assert len(pages) <= len(everything) + 1, "pagination does not end"
    assert [i for page in pages for i in page] == everything

    # backwards from the last page: before = the first id of the page gives the pages before it
    backwards = [pages[-1]]
    before = pages[-1][0] if len(pages) > 1 else None
    while before is not None:
        body = collection.page(order=order, limit=limit, before=before)
        ids = [item["id"] for item in body["data"]]
        assert ids, "a page before a non-first page is never empty"
        backwards.append(ids)
        if not body["has_more"]:
            break
        before = ids[0]
        assert len(backwards) <= len(everything) + 1, "pagination does not end"
    assert backwards[::-1] == pages
