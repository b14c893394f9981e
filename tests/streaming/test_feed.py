"""The streamer and its in-process feed, against a real SQLite event log: order, gaps, bounded
memory for slow clients, the error event, and what the official SDKs make of it."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AzureOpenAI, OpenAI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from assistantd.db.models import Item, RunEvent
from assistantd.items.kinds import new_item
from assistantd.kit.sse import DONE
from assistantd.runs import events, repository, stream
from assistantd.runs.events import EventWriter
from assistantd.runs.signals import FEED_LIMIT, Signals, on_outcome
from tests.streaming.support import Recorder, parse_frames

RUN = "run_feed"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'events.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: RunEvent.metadata.create_all(c, [RunEvent.__table__]))
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


class Reads:
    """Counts table reads (and their page sizes) by streamers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.limits: list[int] = []
        self.rows: list[int] = []
        original = repository.events_after

        async def counted(session: AsyncSession, run_id: str, seq: int, limit: int = 500) -> Any:
            rows = await original(session, run_id, seq, limit)
            self.limits.append(limit)
            self.rows.append(len(rows))
            return rows

        monkeypatch.setattr(repository, "events_after", counted)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    return Reads(monkeypatch)


async def store(sessions: async_sessionmaker[AsyncSession], *events: tuple[int, str]) -> None:
    async with sessions() as session:
        for seq, name in events:
            session.add(RunEvent(run_id=RUN, seq=seq, event=name, data=_data(seq), created_at=0))
        await session.commit()


def _data(seq: int) -> str:
    return json.dumps({"seq": seq})


def publish(signals: Signals, seq: int, name: str = "thread.message.delta") -> None:
    signals.publish(RUN, seq, name, _data(seq))


async def frames_of(source: AsyncIterator[str]) -> list[tuple[str, int | None]]:
    text = "".join([frame async for frame in source])
    return [(f.event, f.id) for f in parse_frames(iter(text.split("\n")))]


def deltas(*seqs: int) -> list[tuple[str, int | None]]:
    return [("thread.message.delta", s) for s in seqs]


async def test_published_events_stream_without_reading_the_table(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    signals = Signals()
    frames = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    for seq in (1, 2):
        publish(signals, seq)
    publish(signals, 3, "thread.run.completed")
    assert await frames_of(frames) == [*deltas(1, 2), ("thread.run.completed", 3), ("done", None)]
    assert reads.limits == []


async def test_what_an_expected_run_published_before_its_stream_opened_is_sent(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    """A run started before its creation commits publishes before the request opens its
    stream: those events wait for that stream, not for the table."""
    signals = Signals()
    signals.expect(RUN)
    for seq in (1, 2):
        publish(signals, seq)
    frames = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    signals.unexpect(RUN)  # the creation committed
    publish(signals, 3, "thread.run.completed")
    assert await frames_of(frames) == [*deltas(1, 2), ("thread.run.completed", 3), ("done", None)]
    assert reads.limits == []


async def test_events_published_out_of_order_stream_in_order_without_reading_the_table(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    """A run started early publishes its model's first tokens (3, 4) before its creation's
    commit publishes the opening events (1, 2) and stores them: the stream sends 1 to 4 in
    order from the feed, at once, and reads nothing back."""
    signals = Signals()
    frames = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    for seq in (3, 4):
        publish(signals, seq)
    for seq in (1, 2, 2):  # a repeat is dropped
        publish(signals, seq)
    signals.run_changed(RUN, 2)  # the creation's events are stored: nothing the feed lacks
    publish(signals, 5, "thread.run.completed")
    async with asyncio.timeout(5):  # a feed that lost its order waits for the table in vain
        sent = await frames_of(frames)
    assert sent == [*deltas(1, 2, 3, 4), ("thread.run.completed", 5), ("done", None)]
    assert reads.limits == []


async def test_an_expected_run_keeps_no_more_than_a_feed(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    signals = Signals()
    signals.expect(RUN)
    for seq in range(1, FEED_LIMIT + 2):
        publish(signals, seq)
    assert signals._early[RUN] is None  # dropped: the table will have them
    feed = signals.open_feed(RUN, fresh=True)
    assert feed.stale
    assert not feed.events
    feed.close()
    # Nobody opened a feed (a request that does not stream): nothing is kept after the creation.
    signals.expect(RUN)
    publish(signals, 1)
    signals.unexpect(RUN)
    publish(signals, 2)
    assert RUN not in signals._early
    assert not signals.open_feed(RUN, fresh=True).events


async def test_a_gap_in_the_feed_is_filled_from_the_table(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    signals = Signals()
    frames = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    publish(signals, 1)
    # Event 2 was written elsewhere (another process); 3 arrives here first.
    publish(signals, 3, "thread.run.completed")
    await store(sessions, (1, "thread.message.delta"), (2, "thread.message.delta"))
    signals.run_changed(RUN, 2)
    assert await frames_of(frames) == [*deltas(1, 2), ("thread.run.completed", 3), ("done", None)]
    assert reads.rows == [1]  # one read, for the missing event only


async def test_catching_up_from_the_table_then_live(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    await store(sessions, *[(s, "thread.message.delta") for s in range(1, 251)])
    signals = Signals()
    source = stream.open_stream(sessions, signals, RUN, 0)
    got = []
    async for frame in source:  # a frame may carry several events (a page of rows at once)
        got.append(frame)
        if sum(f.count("event: ") for f in got) == 250:
            publish(signals, 251, "thread.run.failed")
    events = [(f.event, f.id) for f in parse_frames(iter("".join(got).split("\n")))]
    assert events == [*deltas(*range(1, 251)), ("thread.run.failed", 251), ("done", None)]
    assert set(reads.limits) == {stream.PAGE}
    assert reads.rows == [100, 100, 50]


async def test_a_slow_client_costs_bounded_memory(
    sessions: async_sessionmaker[AsyncSession], reads: Reads
) -> None:
    signals = Signals()
    source = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    (feed,) = signals._live(RUN)
    for seq in range(1, 1001):
        publish(signals, seq)
        assert len(feed.events) <= FEED_LIMIT
    assert feed.stale  # it dropped events: they will come from the table
    await store(sessions, *[(s, "thread.message.delta") for s in range(1, 1001)])
    publish(signals, 1001, "thread.run.completed")
    events = await frames_of(source)
    assert events == [*deltas(*range(1, 1001)), ("thread.run.completed", 1001), ("done", None)]
    assert max(reads.rows) <= stream.PAGE


async def test_wakeups_for_events_already_sent_cost_nothing() -> None:
    signals = Signals()
    feed = signals.open_feed(RUN, after=5)
    feed.stale = False
    signals.run_changed(RUN, 5)
    assert not feed.stale
    signals.run_changed(RUN, 6)
    assert feed.stale
    feed.stale = False
    signals.run_changed(RUN)  # unknown position: look
    assert feed.stale
    # Stored events the feed already holds (published, not sent yet) need no read either.
    feed.stale = False
    for seq in (6, 7, 8):
        publish(signals, seq)
    signals.run_changed(RUN, 8)
    assert not feed.stale
    publish(signals, 10)  # 9 went missing
    signals.run_changed(RUN, 10)
    assert feed.stale
    feed.close()
    assert signals.watched_runs == []


async def test_feeds_are_released(sessions: async_sessionmaker[AsyncSession]) -> None:
    signals = Signals()
    unsent = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    assert signals.watched_runs == [RUN]
    del unsent  # a response that was never sent
    gc.collect()
    assert signals.watched_runs == []
    assert signals._feeds == {}
    sent = stream.open_stream(sessions, signals, RUN, 0, before_commit=True)
    publish(signals, 1, "thread.run.cancelled")
    await frames_of(sent)
    assert signals._feeds == {}


async def test_event_writer_publishes_emitted_events_at_once_and_staged_ones_on_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    signals = Signals()
    feed = signals.open_feed(RUN)
    writer = EventWriter(sessions, signals, RUN, 0)
    try:
        writer.emit("thread.run.in_progress", {"id": RUN})
        assert [(e.seq, e.name) for e in feed.events] == [(1, "thread.run.in_progress")]
        await writer.flush()
        async with sessions() as session:
            writer.stage("thread.run.completed", {"id": RUN})
            writer.discard_staged()  # the transaction is rolled back
            await session.rollback()
        assert len(feed.events) == 1  # a rolled back event is never seen
        async with sessions() as session:
            writer.stage("thread.run.completed", {"id": RUN})
            assert len(feed.events) == 1
            await writer.commit(session)
        # ... and takes no sequence number: the stream's numbers stay contiguous.
        assert [(e.seq, e.name) for e in feed.events][-1] == (2, "thread.run.completed")
    finally:
        await writer.close()
        feed.close()


class CountingSessions:
    """A session factory that counts the transactions it opens."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.opened = 0

    def __call__(self) -> AsyncSession:
        self.opened += 1
        return self.sessions()


async def test_the_events_of_many_runs_share_one_write(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    counting = CountingSessions(sessions)
    signals = Signals()
    writers = [EventWriter(counting, signals, f"run_{i}", 0) for i in range(50)]
    for writer in writers:
        for _ in range(10):
            writer.emit("thread.message.delta", {"id": writer.run_id})
    for writer in writers:
        await writer.close()
    assert counting.opened == 1
    async with sessions() as session:
        for writer in writers:
            assert await repository.last_seq(session, writer.run_id) == 10


async def test_a_run_whose_events_cannot_be_stored_fails_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await store(sessions, (1, "thread.run.created"))  # run_feed already has seq 1
    signals = Signals()
    bad = EventWriter(sessions, signals, RUN, 0)  # will try to store seq 1 again
    good = EventWriter(sessions, signals, "run_good", 0)
    bad.emit("thread.run.in_progress", {"id": RUN})
    good.emit("thread.run.in_progress", {"id": "run_good"})
    await good.flush()
    with pytest.raises(IntegrityError):
        await bad.flush()
    with pytest.raises(IntegrityError):
        bad.emit("thread.message.delta", {"id": RUN})
    good.emit("thread.message.delta", {"id": "run_good"})
    await good.close()
    async with sessions() as session:
        assert await repository.last_seq(session, "run_good") == 2


# --- the error event ---------------------------------------------------------------------------


def _broken_sessions() -> Any:
    @asynccontextmanager
    async def broken() -> AsyncIterator[AsyncSession]:
        raise RuntimeError("database is gone")
        yield  # pragma: no cover

    return broken


async def test_a_failing_stream_sends_an_error_event_then_done() -> None:
    frames = [f async for f in stream.open_stream(_broken_sessions(), Signals(), RUN, 0)]
    assert frames[-1] == DONE
    (error,) = list(parse_frames(iter(frames[0].split("\n"))))
    assert error.event == "error"
    assert error.json() == {
        "error": {
            "message": "The server had an error while streaming this run.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


def _sse_body() -> bytes:
    run = {"id": "run_x", "object": "thread.run", "status": "queued"}
    head = f"event: thread.run.created\ndata: {json.dumps(run)}\n\n"
    return (head + stream.error_frame() + DONE).encode()


@pytest.fixture(params=["openai", "azure"])
def mocked_sdk(request: pytest.FixtureRequest) -> Iterator[OpenAI]:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=_sse_body(), headers={"content-type": "text/event-stream"}
        )

    http = httpx.Client(transport=httpx.MockTransport(handler))
    sdk: OpenAI
    if request.param == "openai":
        sdk = OpenAI(api_key="sk-x", base_url="http://test/v1", http_client=http, max_retries=0)
    else:
        sdk = AzureOpenAI(
            api_key="sk-x",
            api_version="2024-08-01-preview",
            azure_endpoint="http://test",
            http_client=http,
            max_retries=0,
        )
    with sdk:
        yield sdk


def test_the_sdks_raise_on_the_error_event(mocked_sdk: OpenAI) -> None:
    events = mocked_sdk.beta.threads.runs.create(
        thread_id="thread_x", assistant_id="asst_x", stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for _ in events:
            pass
    assert caught.value.message == "The server had an error while streaming this run."
    assert caught.value.type == "server_error"

    with (
        mocked_sdk.beta.threads.runs.stream(
            thread_id="thread_x", assistant_id="asst_x", event_handler=Recorder()
        ) as handler,
        pytest.raises(openai.APIError),
    ):
        handler.until_done()
    assert handler.names == ["thread.run.created"]
    assert handler.calls[-2:] == [("exception", "APIError"), ("end",)]


async def _stored_seqs(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions() as session:
        return [row.seq for row in await repository.events_after(session, RUN, 0, 100)]


async def test_held_events_reach_the_feed_at_once_and_the_table_with_the_next_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    counting = CountingSessions(sessions)
    signals = Signals()
    feed = signals.open_feed(RUN)
    writer = EventWriter(counting, signals, RUN, 0, hold_seconds=30)
    try:
        for _ in range(5):
            writer.emit("thread.message.delta", {"id": RUN})
        assert [e.seq for e in feed.events] == [1, 2, 3, 4, 5]
        await writer.flush()  # nothing was handed to the store
        assert counting.opened == 0
        assert await _stored_seqs(sessions) == []
        async with writer.transaction() as session:
            writer.stage("thread.run.completed", {"id": RUN})
            await writer.commit(session)
        assert counting.opened == 1  # the held events went with the state change
        assert await _stored_seqs(sessions) == [1, 2, 3, 4, 5, 6]
    finally:
        await writer.close()
        feed.close()


async def test_held_events_are_stored_when_the_hold_is_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = EventWriter(sessions, Signals(), RUN, 0, hold_seconds=0.05)
    writer.emit("thread.message.delta", {"id": RUN})
    writer.emit("thread.message.delta", {"id": RUN})
    assert await _stored_seqs(sessions) == []
    await asyncio.sleep(0.2)  # the release timer hands them to the store, which writes them
    await writer.flush()
    assert await _stored_seqs(sessions) == [1, 2]
    writer.emit("thread.message.delta", {"id": RUN})  # past the hold: stored as emitted
    await writer.flush()
    assert await _stored_seqs(sessions) == [1, 2, 3]
    await writer.close()


async def test_held_events_of_a_rolled_back_transaction_are_held_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    writer = EventWriter(sessions, Signals(), RUN, 0, hold_seconds=30)
    writer.emit("thread.message.delta", {"id": RUN})
    async with writer.transaction() as session:
        writer.stage("thread.run.completed", {"id": RUN})
        writer.discard_staged()
        await session.rollback()
    assert await _stored_seqs(sessions) == []
    writer.emit("thread.message.delta", {"id": RUN})
    await writer.close()  # what is still held is stored on close, in order
    assert await _stored_seqs(sessions) == [1, 2]


async def test_an_opening_handed_over_is_stored_first_with_the_next_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A run started before its creation commits, whose creation leaves its first events to
    the run's writer (`events.hand_over`): the stream gets them at the commit, the table
    with the writer's next transaction, ahead of what the run emitted meanwhile."""
    signals = Signals()
    feed = signals.open_feed(RUN, fresh=True)
    created: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    opening: list[dict[str, Any]] = []
    writer = EventWriter(
        sessions, signals, RUN, 2, hold_seconds=30, created=created, opening=opening
    )
    try:
        writer.emit("thread.message.delta", {"id": RUN})  # the model answered at once
        async with sessions() as session:  # the creation
            opening += events.hand_over(
                session, signals, RUN, [("thread.run.created", {}), ("thread.run.queued", {})]
            )
            await session.commit()
        created.set_result(True)
        assert [e.seq for e in feed.events] == [1, 2, 3]
        assert not feed.stale  # nothing the stream has to read back
        assert await _stored_seqs(sessions) == []
        async with writer.transaction() as session:
            writer.stage("thread.run.completed", {"id": RUN})
            await writer.commit(session)
        assert await _stored_seqs(sessions) == [1, 2, 3, 4]
    finally:
        await writer.close()
        feed.close()


async def test_an_opening_handed_over_by_a_creation_that_failed_is_never_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    signals = Signals()
    created: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    opening: list[dict[str, Any]] = []
    writer = EventWriter(sessions, signals, RUN, 1, created=created, opening=opening)
    writer.emit("thread.message.delta", {"id": RUN})
    async with sessions() as session:
        opening += events.hand_over(session, signals, RUN, [("thread.run.created", {})])
        await session.rollback()
    created.set_result(False)
    await writer.close()
    assert await _stored_seqs(sessions) == []


@pytest.fixture
async def item_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    async with sessions() as session:
        await session.run_sync(lambda s: Item.metadata.create_all(s.connection(), [Item.__table__]))
        await session.commit()
    return sessions


async def _status(sessions: async_sessionmaker[AsyncSession], item_id: str) -> str | None:
    async with sessions() as session:
        return await session.scalar(select(Item.status).where(Item.id == item_id))


def _announced(writer: EventWriter) -> Item:
    """Emit the event that announces a new item, in progress (as a turn's message is)."""
    item = new_item("proj", "function_call", thread_id=None, status="in_progress", run_id=RUN)
    writer.emit("response.output_item.added", {"id": item.id}, rows=[item])
    return item


@pytest.mark.parametrize("held", [True, False])
async def test_a_transaction_amends_a_row_held_back_or_stored(
    item_sessions: async_sessionmaker[AsyncSession], held: bool
) -> None:
    writer = EventWriter(item_sessions, Signals(), RUN, 0, hold_seconds=30 if held else 0)
    item = _announced(writer)
    done = {"status": "completed"}
    async with writer.transaction(amend=(Item, item.id, done)) as session:
        await writer.commit(session)
    assert await _status(item_sessions, item.id) == "completed"
    await writer.close()
    assert await _stored_seqs(item_sessions) == [1]


async def test_a_row_amended_by_a_rolled_back_transaction_is_stored_as_emitted(
    item_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A run's final transaction completes its message in the held row; if that transaction
    fails, what is stored later (a hand-back releases it) must not carry the completion, or
    the run's next attempt answers again next to a completed answer."""
    writer = EventWriter(item_sessions, Signals(), RUN, 0, hold_seconds=30)
    item = _announced(writer)
    async with writer.transaction(amend=(Item, item.id, {"status": "completed"})) as session:
        await session.rollback()
    writer.release()
    await writer.flush()
    assert await _status(item_sessions, item.id) == "in_progress"
    await writer.close()


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
async def test_a_transaction_tells_its_outcome_once(
    sessions: async_sessionmaker[AsyncSession], end: str
) -> None:
    told: list[bool] = []
    session = sessions()
    await store(sessions)  # the table exists; a write to end
    session.add(RunEvent(run_id=RUN, seq=1, event="e", data="{}", created_at=0))
    on_outcome(session, told.append)
    await session.flush()
    if end == "commit":
        await session.commit()
    elif end == "rollback":
        await session.rollback()
    await session.close()
    assert told == [end == "commit"]
    assert await _stored_seqs(sessions) == ([1] if end == "commit" else [])
