"""Parsing, chunking, filters, the embedder and citation markers, without a server."""

from __future__ import annotations

import io

import numpy as np
import pytest

from assistantd.tools.base import ToolResult
from assistantd.tools.file_search import FileSearchTool
from assistantd.vector_stores.chunking import Chunker, chunk_texts, resolve_strategy
from assistantd.vector_stores.embeddings import LocalEmbedder, load_tokenizer
from assistantd.vector_stores.parsing import ParseError, segments
from assistantd.vector_stores.search import matches, rewrite
from tests.vector_stores.documents import make_docx, make_pdf, make_pptx


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return load_tokenizer()


class TestParsing:
    def test_pdf_pages_docx_pptx_html(self) -> None:
        pdf = make_pdf([["First page (one)."], ["Second page."]])
        assert [s.strip() for s in segments(io.BytesIO(pdf), "a.pdf", None)] == [
            "First page (one).",
            "Second page.",
        ]
        docx = make_docx(["Alpha paragraph.", "Beta paragraph."], table=[["k", "v"]])
        assert list(segments(io.BytesIO(docx), "a.docx", None)) == [
            "Alpha paragraph.\nBeta paragraph.\nk | v"
        ]
        pptx = make_pptx([("Title", "Body text")], notes="Notes here")
        assert list(segments(io.BytesIO(pptx), "deck.pptx", None)) == [
            "Title\nBody text\nNotes here"
        ]
        html = b"<html><style>p{}</style><body><h1>Head</h1><p>One &amp; two</p></body></html>"
        assert list(segments(io.BytesIO(html), "page.html", None)) == ["Head\nOne & two"]

    @pytest.mark.parametrize(
        ("name", "data", "code"),
        [
            ("image.png", b"\x89PNG....", "unsupported_file"),
            ("old.doc", b"\xd0\xcf\x11\xe0", "unsupported_file"),
            ("broken.pdf", b"%PDF-1.4 nonsense", "invalid_file"),
            ("broken.docx", b"PK not a zip", "invalid_file"),
            ("noext", b"\x00\x01\x02binary", "invalid_file"),
        ],
    )
    def test_failures(self, name: str, data: bytes, code: str) -> None:
        with pytest.raises(ParseError) as caught:
            list(segments(io.BytesIO(data), name, None))
        assert caught.value.code == code

    def test_code_and_json_are_text(self) -> None:
        assert list(segments(io.BytesIO(b"def f():\n    return 1\n"), "m.py", None)) == [
            "def f():\n    return 1\n"
        ]
        assert list(segments(io.BytesIO(b'{"a": 1}'), "x", "application/json")) == ['{"a": 1}']
        assert list(segments(io.BytesIO("café".encode("cp1252")), "latin.txt", None)) == ["café"]


class TestChunking:
    def test_auto_is_800_with_400_overlap(self) -> None:
        assert resolve_strategy(None)["static"] == {
            "max_chunk_size_tokens": 800,
            "chunk_overlap_tokens": 400,
        }

    def test_windows_overlap_and_spans(self, tokenizer: object) -> None:
        pages = ["word " * 250, "", "other " * 130]
        chunks = chunk_texts(
            tokenizer,
            pages,
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 30},
            },
        )
        full = "\n\n".join(p for p in pages if p.strip())
        assert [c.tokens for c in chunks[:-1]] == [100] * (len(chunks) - 1)
        assert all(full[c.start : c.end] == c.text for c in chunks)
        # Consecutive chunks share exactly the overlap.
        assert chunks[1].ids[:30] == chunks[0].ids[70:]
        assert chunks[-1].text.endswith("other")
        assert [c.seq for c in chunks] == list(range(len(chunks)))

    def test_short_text_is_one_chunk(self, tokenizer: object) -> None:
        chunker = Chunker(tokenizer, 800, 400)
        assert list(chunker.feed("just a few words")) == []
        (only,) = list(chunker.finish())
        assert only.text == "just a few words"


class TestFilters:
    ATTRS = {"team": "red", "year": 2024, "public": True}

    @pytest.mark.parametrize(
        ("filter_", "expected"),
        [
            ({"type": "eq", "key": "team", "value": "red"}, True),
            ({"type": "ne", "key": "team", "value": "red"}, False),
            ({"type": "gt", "key": "year", "value": 2023}, True),
            ({"type": "lte", "key": "year", "value": 2023.5}, False),
            ({"type": "eq", "key": "public", "value": True}, True),
            ({"type": "eq", "key": "public", "value": 1}, False),
            ({"type": "in", "key": "team", "value": ["blue", "red"]}, True),
            ({"type": "nin", "key": "team", "value": ["blue", "red"]}, False),
            ({"type": "eq", "key": "missing", "value": "x"}, False),
            ({"type": "ne", "key": "missing", "value": "x"}, True),
            ({"type": "gt", "key": "team", "value": 3}, False),
            (
                {
                    "type": "and",
                    "filters": [
                        {"type": "eq", "key": "team", "value": "red"},
                        {"type": "or", "filters": [{"type": "lt", "key": "year", "value": 2000}]},
                    ],
                },
                False,
            ),
        ],
    )
    def test_matches(self, filter_: dict[str, object], expected: bool) -> None:
        assert matches(filter_, self.ATTRS) is expected

    def test_rewrite(self) -> None:
        assert rewrite("What is the capital of France?") == "capital france"


def test_embedder_is_normalised_and_meaningful() -> None:
    embedder = LocalEmbedder()
    query = embedder.embed_text("How do sea otters sleep?")
    ids = [
        embedder.tokenizer.encode(text, add_special_tokens=False).ids
        for text in [
            "Otters hold hands while they sleep on the water.",
            "Tax forms are due in April.",
        ]
    ]
    vectors = embedder.embed_ids(ids)
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ query > vectors[1] @ query + 0.2
    # A chunk longer than one model window is the length-weighted mean of its windows.
    long_ids = ids[0] * 40
    (long_vector,) = embedder.embed_ids([long_ids])
    assert abs(float(np.linalg.norm(long_vector)) - 1.0) < 1e-5


def test_annotations_point_at_the_markers() -> None:
    tool = FileSearchTool.__new__(FileSearchTool)
    result = ToolResult(
        output="",
        details={
            "id": "call_abcdwxyz",
            "type": "file_search",
            "file_search": {
                "results": [
                    {"file_id": "file-a", "file_name": "a.txt", "score": 1.0},
                    {"file_id": "file-b", "file_name": "b.txt", "score": 0.5},
                ]
            },
        },
    )
    text = "Sí 【wxyz:1†b.txt】 and 【0†a.txt】, not 【zz】 or 【wxyz:9†nope.txt】."
    annotations = _run(tool.annotate(None, text, [result]))  # type: ignore[arg-type]
    assert [(a["file_citation"]["file_id"], a["text"]) for a in annotations] == [
        ("file-b", "【wxyz:1†b.txt】"),
        ("file-a", "【0†a.txt】"),
    ]
    for annotation in annotations:
        assert text[annotation["start_index"] : annotation["end_index"]] == annotation["text"]


def _run(coroutine: object) -> list[dict[str, object]]:
    import asyncio

    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_search_results_fit_the_models_window() -> None:
    from assistantd.tools.file_search import _within_budget
    from assistantd.vector_stores.search import Hit

    hits = [Hit("vs_1", f"file-{i}", "f.txt", i, "word " * 800, 1.0, None) for i in range(20)]
    assert len(_within_budget(hits, 16_000)) == 15
    assert len(_within_budget(hits, 2_000)) == 1  # the best result always goes through
