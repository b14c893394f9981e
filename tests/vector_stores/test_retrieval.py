"""A small labelled retrieval set: hybrid search finds the answering chunk in the top 5 more often
than vector-only or keyword-only search.

The set mixes the two kinds of question each search alone gets wrong: questions naming a code
that only full text can tell apart from its many look-alikes, and questions paraphrasing their
answer in other words, which only embeddings connect. The documents are ingested by the live
server; the three modes are then run by `Retrieval` on the same database.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from openai import OpenAI

from assistantd.db.engine import make_engine, make_sessionmaker
from assistantd.db.models import VectorStore
from assistantd.settings import Settings
from assistantd.vector_stores.embeddings import LocalEmbedder
from assistantd.vector_stores.search import Retrieval

PARTS = ["coolant valve", "feed pump", "spindle motor", "door interlock", "air filter", "heater"]
FAULTS = ["is stuck", "overheated", "lost power", "reports a short circuit", "needs calibration"]
ACTIONS = ["restart the unit", "call the service desk", "replace the fuse", "clean the sensor"]


def _codes() -> list[tuple[str, str]]:
    rng = random.Random(7)
    entries = []
    for number in range(90):
        code = f"QX-{4100 + number * 7}"
        meaning = f"the {rng.choice(PARTS)} {rng.choice(FAULTS)}; {rng.choice(ACTIONS)}"
        entries.append((code, meaning))
    return entries


# (paragraph, question in other words, phrase identifying the answering chunk)
SEMANTIC = [
    (
        "Sea otters link paws while resting on the water so that the current does not carry "
        "them away from each other.",
        "Which animal sleeps while holding hands so it won't float off?",
        "Sea otters link paws",
    ),
    (
        "To make the dough rise, leave it somewhere warm and covered for roughly an hour until "
        "it doubles in volume.",
        "How long should bread proof before baking?",
        "doubles in volume",
    ),
    (
        "The red planet owes its colour to iron oxide, essentially rust, that covers its dusty "
        "surface.",
        "Why does Mars look reddish?",
        "iron oxide",
    ),
    (
        "Employees may carry over at most five unused days of annual leave into the following "
        "calendar year.",
        "Can I keep vacation I didn't take for next year?",
        "carry over at most five",
    ),
    (
        "Marathon runners often eat pasta in the days before a race to store glycogen in their "
        "muscles.",
        "What do long distance athletes eat before competitions for energy?",
        "store glycogen",
    ),
    (
        "A solar eclipse happens when the moon passes between the earth and the sun and blocks "
        "its light.",
        "What causes the daytime sky to go dark when our satellite gets in the way?",
        "moon passes between",
    ),
    (
        "Interest on the savings account is paid out every quarter and added to the balance.",
        "How frequently does the bank credit earnings on my deposits?",
        "paid out every quarter",
    ),
    (
        "Tomato plants need at least six hours of direct sunshine each day to produce fruit.",
        "How much light do vegetable crops like tomatoes require daily?",
        "six hours of direct sunshine",
    ),
    (
        "The castle was built in the twelfth century to guard the river crossing against "
        "raiders from the north.",
        "When was the fortress constructed and what was its purpose?",
        "twelfth century",
    ),
    (
        "Refunds are issued to the original payment card within ten working days of receiving "
        "the returned item.",
        "How long until I get my money back after sending a product back?",
        "within ten working days",
    ),
]
FILLER = [
    "The quarterly newsletter covers team events, new hires and the cafeteria menu.",
    "Parking permits are renewed each January at the front desk.",
    "The library opens at nine and closes at six on weekdays.",
    "Meeting rooms can be booked through the intranet calendar.",
    "The annual picnic takes place in the park near the lake.",
    "Printers on the third floor need a badge to release jobs.",
]


def _documents() -> list[tuple[str, str]]:
    codes = _codes()
    manual = "\n\n".join(f"Error code {code}: {meaning}." for code, meaning in codes)
    paragraphs = [p for p, _, _ in SEMANTIC] + FILLER
    random.Random(3).shuffle(paragraphs)
    half = len(paragraphs) // 2
    return [
        ("manual.txt", manual),
        ("handbook.txt", "\n\n".join(paragraphs[:half])),
        ("notes.txt", "\n\n".join(paragraphs[half:])),
    ]


def _questions() -> list[tuple[str, str]]:
    codes = _codes()
    keyword = [(f"What does {code} mean?", f"{code}: {meaning}") for code, meaning in codes[::9]]
    semantic = [(question, answer) for _, question, answer in SEMANTIC]
    return keyword + semantic


async def _hits(database_url: str, store_id: str) -> dict[str, int]:
    settings = Settings(database_url=database_url, data_dir=Path("."))
    engine = make_engine(settings)
    retrieval = Retrieval(settings, LocalEmbedder())
    found = {"hybrid": 0, "vector": 0, "keyword": 0}
    try:
        async with make_sessionmaker(engine, write=False)() as session:
            store = await session.get(VectorStore, store_id)
            assert store is not None
            for question, answer in _questions():
                for mode in found:
                    hits = await retrieval.search(
                        session,
                        [store],
                        [question],
                        max_results=5,
                        mode=mode,  # type: ignore[arg-type]
                    )
                    found[mode] += any(answer in hit.text for hit in hits)
    finally:
        await engine.dispose()
    return found


def test_hybrid_beats_vector_only_and_keyword_only(client: OpenAI, database_url: str) -> None:
    store = client.vector_stores.create(name="labelled")
    batch = client.vector_stores.file_batches.create_and_poll(
        store.id,
        file_ids=[
            client.files.create(file=(name, text.encode()), purpose="assistants").id
            for name, text in _documents()
        ],
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
        },
        poll_interval_ms=50,
    )
    assert batch.file_counts.completed == 3
    found = asyncio.run(_hits(database_url, store.id))
    total = len(_questions())
    print(f"top-5 hits of {total}: {found}")  # noqa: T201
    assert found["hybrid"] > found["vector"]
    assert found["hybrid"] > found["keyword"]
    assert found["hybrid"] >= 0.9 * total
