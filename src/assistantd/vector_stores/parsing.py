"""Turn a stored file into text, one segment (page, slide, paragraph group) at a time.

Parsers read a seekable binary file and yield segments lazily, so a 1,000-page PDF is never held
as text in memory. Supported: plain text and markup (txt, md, html, json, tex, source code),
pdf, docx and pptx. Anything else fails the file with `unsupported_file`; a file of a supported
type that cannot be read fails with `invalid_file`.
"""

from __future__ import annotations

import codecs
import html.parser
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import IO, Any

TEXT_SUFFIXES = frozenset(
    ".txt .md .markdown .rst .tex .json .jsonl .csv .tsv .xml .yaml .yml .toml .ini .cfg .log "
    ".c .h .cc .cpp .cxx .hpp .cs .css .go .java .js .mjs .cjs .jsx .ts .tsx .php .py .rb .sh "
    ".bash .zsh .rs .kt .kts .swift .scala .sql .r .lua .pl .m .vue .svelte .dart .ex .exs .erl "
    ".hs .clj .groovy .ps1 .bat .proto .graphql".split()
)
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
TEXT_BLOCK = 64 * 1024  # characters of plain text per segment


class ParseError(Exception):
    """`code` is the vector store file's `last_error.code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Parser = Callable[[IO[bytes]], Iterator[str]]


def _text(fh: IO[bytes]) -> Iterator[str]:
    """UTF-8 text; a file whose first block is not UTF-8 is read as Windows-1252 instead."""
    decoder: codecs.IncrementalDecoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    first = True
    while True:
        raw = fh.read(TEXT_BLOCK)
        last = len(raw) < TEXT_BLOCK
        try:
            text = decoder.decode(raw, final=last)
        except UnicodeDecodeError:
            encoding = "cp1252" if first else "utf-8"
            decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            text = decoder.decode(raw, final=last)
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        if "\x00" in text:
            raise ParseError("invalid_file", "The file is binary, not text.")
        if text:
            yield text
        if last:
            return


class _HtmlText(html.parser.HTMLParser):
    BLOCKS = frozenset(
        "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer pre "
        "blockquote title".split()
    )
    SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.out.append(data)

    def take(self) -> str:
        text, self.out = "".join(self.out), []
        lines = (" ".join(line.split()) for line in text.split("\n"))
        return "\n".join(line for line in lines if line)


def html_text(markup: str) -> str:
    """The readable text of an HTML document (scripts and styles left out)."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.take()


def _html(fh: IO[bytes]) -> Iterator[str]:
    parser = _HtmlText()
    for block in _text(fh):
        parser.feed(block)
        text = parser.take()
        if text:
            yield text
    parser.close()
    tail = parser.take()
    if tail:
        yield tail


def _pdf(fh: IO[bytes]) -> Iterator[str]:
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(fh)
        count = len(reader.pages)
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise ParseError("invalid_file", f"The PDF could not be read: {exc}") from exc
    for number in range(count):
        try:
            page = reader.pages[number]
            text = page.extract_text() or ""
        except (PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise ParseError("invalid_file", f"Page {number + 1} could not be read: {exc}") from exc
        # Parsed pages stay cached in the reader; drop them so memory stays flat.
        reader.flattened_pages[number] = None  # type: ignore[index,call-overload,unused-ignore]
        if text.strip():
            yield text


def _docx(fh: IO[bytes]) -> Iterator[str]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(fh)
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ParseError("invalid_file", f"The Word document could not be read: {exc}") from exc
    block: list[str] = []
    for paragraph in document.paragraphs:
        if paragraph.text.strip():
            block.append(paragraph.text)
        if sum(len(p) for p in block) > TEXT_BLOCK:
            yield "\n".join(block)
            block = []
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells]
            if any(cells):
                block.append(" | ".join(cells))
    if block:
        yield "\n".join(block)


def _pptx(fh: IO[bytes]) -> Iterator[str]:
    import pptx
    from pptx.exc import PackageNotFoundError

    try:
        deck = pptx.Presentation(fh)
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise ParseError("invalid_file", f"The presentation could not be read: {exc}") from exc
    for slide in deck.slides:
        lines: list[str] = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                lines.extend(p.text for p in shape.text_frame.paragraphs if p.text.strip())
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    lines.append(" | ".join(cell.text.strip() for cell in row.cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                lines.append(notes)
        if lines:
            yield "\n".join(lines)


_BY_SUFFIX: dict[str, Parser] = {
    **dict.fromkeys(TEXT_SUFFIXES, _text),
    **dict.fromkeys(HTML_SUFFIXES, _html),
    ".pdf": _pdf,
    ".docx": _docx,
    ".pptx": _pptx,
}
_BY_MIME: dict[str, Parser] = {
    "text/html": _html,
    "application/pdf": _pdf,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _docx,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _pptx,
    "application/json": _text,
}


def parser_for(filename: str, content_type: str | None) -> Parser:
    """The parser for a file, by extension, else by declared type; ParseError if none."""
    suffix = PurePath(filename).suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    mime = (content_type or "").split(";")[0].strip().lower()
    if not suffix:
        if mime in _BY_MIME:
            return _BY_MIME[mime]
        if mime.startswith("text/") or mime in ("", "application/octet-stream"):
            return _text  # no extension: read it as text; binary content fails as invalid
    raise ParseError(
        "unsupported_file",
        f"Files of type '{suffix or mime or 'unknown'}' are not supported for file search.",
    )


def segments(fh: IO[bytes], filename: str, content_type: str | None) -> Iterator[str]:
    """The file's text, segment by segment (ParseError on failure)."""
    parse = parser_for(filename, content_type)
    try:
        yield from parse(fh)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # third-party parsers raise anything on malformed input
        raise ParseError("invalid_file", f"The file could not be parsed: {exc}") from exc
