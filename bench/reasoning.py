#!/usr/bin/env python3
"""What reasoning costs: the passthrough's cost on the first answer token, and sealing a
reasoning item.

    python3 bench/reasoning.py [--samples 200] [--warmup 20] [--store] [--seal-only]

1. Reasoning passthrough (issue 20's target: <= 0.5 ms p50 added to the first answer token).
   One `assistantd serve` (SQLite, embedded worker, this checkout's `src`) in front of
   `bench/codex_turn.py`'s instant backend, which streams 8 chunks of `reasoning_content`
   before the answer's 8 text chunks for a model named `reasoning-...`, and the answer alone for
   any other. Four calls per sample, in turn: a streamed response of each model (`store: false`,
   `include: ["reasoning.encrypted_content"]` as Codex sends; `--store`: stored) and the same
   two chat completions straight to the backend. Overhead = p50 through assistantd - p50
   direct, per model; the passthrough's cost is the reasoning model's overhead minus the plain
   one's (the backend's own time to stream the reasoning is in both sides and cancels out).
2. Sealing and opening a 4 KB reasoning item (target: <= 50 us each), with `kit.sealed`
   directly (`items.reasoning.data` / `opened`, as a response does), timed with `timeit`.

A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

from codex_turn import (  # noqa: E402
    MS,
    direct_first,
    first_text,
    p50_p90,
    start_server,
)
from instant_backend import REASONING_PREFIX, Backend  # noqa: E402
from peers import _headers  # noqa: E402

from assistantd.items.reasoning import data as reasoning_data  # noqa: E402
from assistantd.items.reasoning import opened  # noqa: E402
from assistantd.kit.sealed import Sealer  # noqa: E402

TARGET_PASSTHROUGH_MS = 0.5
TARGET_SEAL_US = 50.0
ITEM_BYTES = 4096


def response_body(model: str, store: bool, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": f"bench {n}", "stream": True, "store": store}
    if not store:
        body["include"] = ["reasoning.encrypted_content"]
    return body


def chat_body(model: str, n: int) -> dict[str, Any]:
    return {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": f"bench {n}"}],
    }


async def passthrough(args: argparse.Namespace) -> None:
    models = {"plain": "plain-bench", "reasoning": f"{REASONING_PREFIX}bench"}
    through: dict[str, list[float]] = {kind: [] for kind in models}
    direct: dict[str, list[float]] = {kind: [] for kind in models}
    backend = Backend()
    with tempfile.TemporaryDirectory(prefix="assistantd-bench-reasoning-") as name:
        server = start_server(Path(name), backend)
        try:
            await server.wait_ready(120)
            async with (
                httpx.AsyncClient(base_url=server.url, headers=_headers(), timeout=60) as http,
                httpx.AsyncClient(base_url=backend.url, timeout=60) as straight,
            ):
                for n in range(args.warmup + args.samples):
                    for kind, model in models.items():
                        took, _ = await first_text(http, response_body(model, args.store, n))
                        alone = await direct_first(straight, chat_body(model, n))
                        if n >= args.warmup:
                            through[kind].append(took)
                            direct[kind].append(alone)
        finally:
            server.stop()
            backend.stop()
    store = "store: true" if args.store else "store: false with encrypted reasoning"
    print(f"reasoning passthrough ({args.samples} samples, {store}):")
    overhead: dict[str, float] = {}
    for kind in models:
        a50, a90 = p50_p90(through[kind])
        d50, d90 = p50_p90(direct[kind])
        overhead[kind] = (a50 - d50) * MS
        print(
            f"  {kind:9}: first answer text p50 {a50 * MS:.2f} / p90 {a90 * MS:.2f} ms, direct "
            f"p50 {d50 * MS:.2f} / p90 {d90 * MS:.2f} ms, overhead p50 +{overhead[kind]:.2f} ms"
        )
    added = overhead["reasoning"] - overhead["plain"]
    verdict = "ok" if added <= TARGET_PASSTHROUGH_MS else "MISSED"
    print(
        f"  added by the reasoning passthrough: {added:+.2f} ms p50 "
        f"(target <= {TARGET_PASSTHROUGH_MS} ms: {verdict})"
    )


def sealing() -> None:
    sealer = Sealer(secrets.token_bytes(32))
    text = ("The user asks for a file listing; I should run ls and read it. " * 80)[:ITEM_BYTES]
    token = reasoning_data(text, None, sealer)["encrypted_content"]
    assert opened(sealer, token, param="input[0]") == text
    print(f"sealing a {len(text.encode())} B reasoning item ({len(token)} B sealed):")
    for label, call in (
        ("seal", lambda: sealer.seal("reasoning", {"text": text})),
        ("open", lambda: sealer.open("reasoning", token, param="input[0]")),
        ("item data + seal", lambda: reasoning_data(text, None, sealer)),
        ("opened item", lambda: opened(sealer, token, param="input[0]")),
    ):
        timer = timeit.Timer(call)
        number, _ = timer.autorange()
        best = min(timer.repeat(repeat=5, number=number)) / number * 1e6
        verdict = "ok" if best <= TARGET_SEAL_US else "MISSED"
        print(f"  {label:17}: {best:6.1f} us (target <= {TARGET_SEAL_US:g} us: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--store", action="store_true", help="stored responses")
    parser.add_argument("--seal-only", action="store_true", help="only the sealing figures")
    args = parser.parse_args()
    sealing()
    if not args.seal_only:
        asyncio.run(passthrough(args))


if __name__ == "__main__":
    main()
