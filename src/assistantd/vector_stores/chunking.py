"""Split text into overlapping chunks of word-piece tokens, incrementally.

`auto` is 800 tokens with 400 of overlap (OpenAI's default); `static` takes its two numbers.
Text arrives segment by segment (pages, slides); segments are joined with a blank line and
chunks run across them. Only the tokens of the chunk being built are kept, so memory does not
grow with the document. A chunk's text is the exact span of the source from its first to its
last token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Chunk:
    seq: int
    text: str
    ids: list[int]
    start: int  # character offsets in the whole parsed text
    end: int

    @property
    def tokens(self) -> int:
        return len(self.ids)


def resolve_strategy(strategy: dict[str, Any] | None) -> dict[str, Any]:
    """The stored (and wire) form: always `static` with both numbers."""
    if strategy and strategy.get("type") == "static":
        static = strategy["static"]
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": int(static["max_chunk_size_tokens"]),
                "chunk_overlap_tokens": int(static["chunk_overlap_tokens"]),
            },
        }
    return {
        "type": "static",
        "static": {
            "max_chunk_size_tokens": AUTO_MAX_TOKENS,
            "chunk_overlap_tokens": AUTO_OVERLAP_TOKENS,
        },
    }


class Chunker:
    def __init__(self, tokenizer: Any, max_tokens: int, overlap: int) -> None:
        assert 0 <= overlap < max_tokens
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.step = max_tokens - overlap
        self._text = ""
        self._ids: list[int] = []
        self._spans: list[tuple[int, int]] = []
        self._covered = 0  # leading tokens already part of an emitted chunk
        self._seq = 0
        self._base = 0  # offset of `_text` in the whole parsed text
        self._fed = False

    def feed(self, segment: str) -> Iterator[Chunk]:
        if not segment.strip():
            return
        separator = SEPARATOR if self._fed else ""
        self._fed = True
        at = self._base + len(self._text) + len(separator)  # the segment's place in the whole
        self._text = f"{self._text}{separator}{segment}"
        # In pieces: the tokenizer holds the GIL while it works (100 ms for 64K characters),
        # and on SQLite the API's event loop shares this process.
        for start, piece in _pieces(segment):
            encoding = self.tokenizer.encode(piece, add_special_tokens=False)
            self._ids.extend(encoding.ids)
            offset = at + start - self._base
            self._spans.extend((s + offset, e + offset) for s, e in encoding.offsets)
            while len(self._ids) >= self.max_tokens:
                yield self._emit(self.max_tokens)
                self._drop(self.step)

    def finish(self) -> Iterator[Chunk]:
        if len(self._ids) > self._covered:
            yield self._emit(len(self._ids))

    def _emit(self, count: int) -> Chunk:
        start, end = self._spans[0][0], self._spans[count - 1][1]
        chunk = Chunk(
            seq=self._seq,
            text=self._text[start:end],
            ids=self._ids[:count],
            start=self._base + start,
            end=self._base + end,
        )
        self._seq += 1
        self._covered = count
        return chunk

    def _drop(self, count: int) -> None:
        cut = self._spans[count][0] if count < len(self._spans) else len(self._text)
        self._text = self._text[cut:]
        self._base += cut
        self._ids = self._ids[count:]
        self._spans = [(start - cut, end - cut) for start, end in self._spans[count:]]
        self._covered = max(0, self._covered - count)


PIECE = 4096  # characters tokenized at once
RUN_PIECE = 256  # characters per piece of a run with no whitespace in it


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """`text` in pieces of at most PIECE characters, cut at whitespace (the tokenizer splits
    there anyway, so the tokens are the same). A run with no whitespace (which the tokenizer
    makes one unknown token, however long) is cut every RUN_PIECE characters, so no token, and
    no chunk of 800 tokens, spans megabytes."""
    start, size = 0, len(text)
    while start < size:
        end = min(size, start + PIECE)
        if end < size:
            cut = max(text.rfind(" ", start + 1, end), text.rfind("\n", start + 1, end))
            end = cut if cut > start else start + RUN_PIECE
        yield start, text[start:end]
        start = end


def chunk_texts(tokenizer: Any, segments: list[str], strategy: dict[str, Any]) -> list[Chunk]:
    """All chunks of `segments` at once (for tests and small inputs)."""
    static = resolve_strategy(strategy)["static"]
    chunker = Chunker(tokenizer, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])
    chunks: list[Chunk] = []
    for segment in segments:
        chunks.extend(chunker.feed(segment))
    chunks.extend(chunker.finish())
    return chunks
