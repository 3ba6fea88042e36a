"""What every import reader yields: a raw item (a JSON object or its problems) read from text.

Its own module so the readers (sources.py) and the CSV layout (csv_rows.py) both use it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.schemas import Problem


class TextSource(Protocol):
    """What the readers need of a text stream."""

    def read(self, size: int = -1, /) -> str: ...

    def readline(self, size: int = -1, /) -> str: ...

    def __iter__(self) -> Iterator[str]: ...


@dataclass(frozen=True)
class RawItem:
    """One record as read: a JSON object to validate, or the problems that kept it from one."""

    position: str
    data: dict[str, Any] | None
    problems: tuple[Problem, ...] = field(default=())
    kind: str | None = None  # known from a CSV header; else from the item or --kind
