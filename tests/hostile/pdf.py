"""Hostile PDFs built by hand: a few KB that cost a PDF library a minute of CPU or gigabytes of memory."""

from __future__ import annotations

import io
import zlib


def _pdf(stream: bytes, resources: bytes = b"") -> bytes:
    """A one-page PDF whose content stream is `stream` (already Flate-compressed)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " + resources + b">>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def text_pdf(text: str) -> bytes:
    content = b"BT /F1 12 Tf 72 712 Td (" + text.encode("latin-1") + b") Tj ET"
    return _pdf(zlib.compress(content), b"/Resources << /Font << /F1 5 0 R >> >> ")


def cpu_bomb_pdf(operations: int = 400_000) -> bytes:
    """About 25 KB that take pypdf about a minute of CPU: a content stream of `operations` text operators."""
    content = b"BT /F1 12 Tf 72 712 Td " + b"(Hello world) Tj 0 -1 Td " * operations + b"ET"
    return _pdf(zlib.compress(content, 9), b"/Resources << /Font << /F1 5 0 R >> >> ")


def memory_bomb_pdf(decoded_bytes: int = 2 * 1024**3) -> bytes:
    """A content stream that inflates to `decoded_bytes` of spaces (about 1,000:1)."""
    comp = zlib.compressobj(9)
    step = b" " * (1 << 20)
    stream = b"".join(comp.compress(step) for _ in range(decoded_bytes // len(step))) + comp.flush()
    return _pdf(stream)
