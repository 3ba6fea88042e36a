"""Read import files as a stream of raw items: JSON array, NDJSON or CSV, never the whole file.

Each item carries its position in the file ("[12]", "line 13", "row 14") so a failure report can
point at it. A syntax error the reader can skip (a bad NDJSON line, a bad CSV cell) becomes a
failed item; one it cannot skip (a broken JSON array) becomes a failed item and ends that file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from service.imports.csv_rows import csv_items
from service.imports.raw import RawItem, TextSource
from service.schemas import Problem

READ_SIZE = 64 * 1024
# No record is this long; a syntax error must not make us read the rest of the file into memory.
MAX_ELEMENT_CHARS = 16 * 1024 * 1024


class SourceFormat(StrEnum):
    """The file formats an import reads."""

    JSON = "json"  # one array of records
    NDJSON = "ndjson"  # one record per line
    CSV = "csv"  # one row per record, one column per item


class CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it, for progress and ETA."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def detect_format(name: str, first_char: str) -> SourceFormat:
    """The format by file extension, else by the first non-blank character."""
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return SourceFormat.CSV
    if suffix in (".ndjson", ".jsonl"):
        return SourceFormat.NDJSON
    if first_char == "[":
        return SourceFormat.JSON
    if first_char == "{":
        return SourceFormat.NDJSON
    return SourceFormat.CSV


def _first_char(text: IO[str]) -> str:
    """Peek at the first non-blank character without consuming the stream."""
    # TextIOWrapper has no peek; read a little and seek back (files), or buffer it (pipes).
    head = text.read(1)
    while head and head.isspace():
        head = text.read(1)
    return head


def json_array_items(text: TextSource) -> Iterator[RawItem]:
    """Each element of a JSON array, decoded one at a time from a sliding buffer."""
    decoder = json.JSONDecoder()
    buf = ""
    pos = 0
    eof = False
    want = READ_SIZE

    def fill() -> bool:
        nonlocal buf, pos, eof, want
        chunk = text.read(want)
        if not chunk:
            eof = True
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    def skip_blank() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos < len(buf) or not fill():
                return buf[pos] if pos < len(buf) else ""

    if skip_blank() != "[":
        yield RawItem("[0]", None, (Problem("$", "not a JSON array"),))
        return
    pos += 1
    index = 0
    if skip_blank() == "]":
        return
    while True:
        skip_blank()
        try:
            value, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            # Perhaps the element is cut off at the end of the buffer: read more, retry.
            if not eof and len(buf) - pos < MAX_ELEMENT_CHARS and fill():
                want = min(want * 2, 16 * 1024 * 1024)  # a long element: grow, stay linear
                continue
            yield RawItem(f"[{index}]", None, (Problem("$", f"not JSON: {exc.msg}"),))
            return
        want = READ_SIZE
        pos = end
        yield _object_item(f"[{index}]", value)
        index += 1
        separator = skip_blank()
        if separator == "]":
            return
        if separator != ",":
            yield RawItem(f"[{index}]", None, (Problem("$", "expected ',' or ']'"),))
            return
        pos += 1


def _object_item(position: str, value: Any) -> RawItem:
    if not isinstance(value, dict):
        return RawItem(position, None, (Problem("$", "must be a JSON object"),))
    return RawItem(position, value)


def ndjson_items(text: TextSource, first: str = "") -> Iterator[RawItem]:
    """Each non-blank line as a JSON object; a bad line is reported and the rest go on."""
    number = 0
    for number, line in enumerate(_lines(text, first), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid text"
            yield RawItem(f"line {number}", None, (Problem("$", f"not JSON: {message}"),))
            continue
        yield _object_item(f"line {number}", value)


def _lines(text: TextSource, first: str) -> Iterator[str]:
    if first:
        yield first + text.readline()
    yield from text


def read_items(
    text: IO[str], name: str, kind_hint: str | None = None
) -> tuple[SourceFormat, Iterator[RawItem]]:
    """The format of an opened text stream and an iterator over its items."""
    first = _first_char(text)
    fmt = detect_format(name, first)
    if fmt is SourceFormat.JSON:
        return fmt, json_array_items(_Prepend(first, text))
    if fmt is SourceFormat.NDJSON:
        return fmt, ndjson_items(text, first)
    return fmt, csv_items(_Prepend(first, text), kind_hint)


class _Prepend:
    """A text stream with a few already-read characters put back in front."""

    def __init__(self, head: str, rest: IO[str]) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1, /) -> str:
        if size < 0:
            out, self.head = self.head + self.rest.read(), ""
            return out
        out, self.head = self.head[:size], self.head[size:]
        if len(out) < size:
            out += self.rest.read(size - len(out))
        return out

    def readline(self, size: int = -1, /) -> str:
        if self.head:
            out, self.head = self.head, ""
            if out.endswith("\n"):
                return out
            return out + self.rest.readline()
        return self.rest.readline()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line
