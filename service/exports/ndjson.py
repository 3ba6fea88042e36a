"""NDJSON files, one per resource type, written to '.part' files and renamed when complete."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def dumps(resource: Any) -> str:
    """One compact JSON line (no newline)."""
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of an NDJSON file, one line at a time."""
    with path.open(encoding="utf-8") as source:
        for line in source:
            if line.strip():
                item = json.loads(line)
                if isinstance(item, dict):
                    yield item


class TypeFiles:
    """Writers for '<name>.ndjson' files in one folder; nothing final exists before commit().

    An interrupted export leaves only '.part' files, which the next run truncates: a restart
    never appends to an earlier attempt, so no line is written twice.
    """

    def __init__(self, folder: Path, suffix: str = ".ndjson") -> None:
        self.folder = folder
        self.suffix = suffix
        self.counts: dict[str, int] = {}
        self._files: dict[str, IO[str]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """The final path of one file."""
        return self.folder / f"{name}{self.suffix}"

    def handle(self, name: str) -> IO[str]:
        """The open '.part' file for `name` (created, truncated, on first use)."""
        handle = self._files.get(name)
        if handle is None:
            part = self.path(name).with_name(self.path(name).name + ".part")
            handle = part.open("w", encoding="utf-8", newline="\n")
            self._files[name] = handle
            self.counts[name] = 0
        return handle

    def write(self, name: str, line: str) -> None:
        """Append one line (without its newline) to `name`."""
        self.handle(name).write(line + "\n")
        self.counts[name] += 1

    def commit(self) -> dict[str, int]:
        """Flush, fsync and rename every file to its final name; returns lines per name."""
        for name, handle in self._files.items():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            part = Path(handle.name)
            os.replace(part, self.path(name))
        self._files.clear()
        return dict(self.counts)

    def abort(self) -> None:
        """Close and delete every '.part' file."""
        for handle in self._files.values():
            handle.close()
            Path(handle.name).unlink(missing_ok=True)
        self._files.clear()
        self.counts.clear()
