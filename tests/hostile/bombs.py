"""Generated hostile documents: one archive or decompression bomb per parser."""

from __future__ import annotations

import io
import zipfile
import zlib

MB = 1024 * 1024

_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_W = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _repeated(head: bytes, unit: bytes, count: int, tail: bytes) -> bytes:
    return head + unit * count + tail


def docx_bomb(unpacked_mb: int = 300, *, unit: bytes = b"<w:p/>") -> bytes:
    """A .docx whose `word/document.xml` inflates to about `unpacked_mb` MB (of empty
    paragraphs by default: a huge element tree for a parser)."""
    head = b'<?xml version="1.0"?><w:document xmlns:w="' + _W + b'"><w:body>'
    body = _repeated(head, unit, unpacked_mb * MB // len(unit), b"</w:body></w:document>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", body)
    return out.getvalue()


def pptx_bomb(unpacked_mb: int = 300) -> bytes:
    """A .pptx-named archive with one member inflating to `unpacked_mb` MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("ppt/slides/slide1.xml", b" " * (unpacked_mb * MB))
    return out.getvalue()


def pdf_bomb(unpacked_mb: int = 300) -> bytes:
    """A one-page PDF whose content stream (FlateDecode) inflates to `unpacked_mb` MB."""
    stream = zlib.compress(b"BT /F1 12 Tf (x) Tj ET\n" + b" " * (unpacked_mb * MB), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def html_bomb(size_mb: int = 8) -> bytes:
    """An HTML file that is one unterminated script: the parser buffers and rescans it on every
    block for its end (quadratic time), and finds no text."""
    return b"<html><body><script>" + b"x" * (size_mb * MB)


def json_bomb(depth: int = 2_000_000) -> bytes:
    """JSON nested `depth` arrays deep (a recursive parser's stack; text to ours)."""
    return b"[" * depth + b"]" * depth
