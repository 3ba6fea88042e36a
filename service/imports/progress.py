"""Import progress: a rich progress bar on a terminal, plain lines in logs and pipes."""

from __future__ import annotations

import time
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PLAIN_EVERY_SECONDS = 5.0


class ImportProgress(Protocol):
    """What the importer reports: one file at a time, entries done and bytes read."""

    def start_file(self, name: str, total_bytes: int | None) -> None: ...

    def update(self, entries: int, bytes_read: int) -> None: ...

    def end_file(self) -> None: ...


class _EntriesColumn(ProgressColumn):
    """Entries read so far and entries per second (the bar itself tracks bytes, for the ETA)."""

    def render(self, task: Task) -> Text:
        entries = int(task.fields.get("entries", 0))
        elapsed = task.elapsed or 0.0
        rate = entries / elapsed if elapsed > 0 else 0.0
        return Text(f"{entries:,} entries  {rate:,.0f} entries/s", style="progress.data.speed")


class RichProgress:
    """A bar per file with entries/s and the time left (from the share of the file read)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            _EntriesColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID | None = None

    def start_file(self, name: str, total_bytes: int | None) -> None:
        self.progress.start()
        self.task = self.progress.add_task(name, total=total_bytes, entries=0)

    def update(self, entries: int, bytes_read: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=bytes_read, entries=entries)

    def end_file(self) -> None:
        if self.task is not None:
            task = self.progress.tasks[self.task]
            self.progress.update(self.task, completed=task.total or task.completed)
        self.progress.stop()
        self.task = None


class PlainProgress:
    """A line every few seconds: entries, rate and share of the file read; then a last line."""

    def __init__(self, out: IO[str], every_seconds: float = PLAIN_EVERY_SECONDS) -> None:
        self.out = out
        self.every = every_seconds
        self.name = ""
        self.total: int | None = None
        self.started = 0.0
        self.last = 0.0
        self.entries = 0

    def start_file(self, name: str, total_bytes: int | None) -> None:
        self.name, self.total, self.entries = name, total_bytes, 0
        self.started = self.last = time.monotonic()

    def _line(self, bytes_read: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = f", {100 * bytes_read / self.total:.0f}% of the file" if self.total else ""
        self.out.write(
            f"import: {self.name}: {self.entries} entries, "
            f"{self.entries / elapsed:.0f} entries/s{share}\n"
        )
        self.out.flush()

    def update(self, entries: int, bytes_read: int) -> None:
        self.entries = entries
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line(bytes_read)

    def end_file(self) -> None:
        self._line(self.total or 0)


class NoProgress:
    """Reports nothing (library use, tests)."""

    def start_file(self, name: str, total_bytes: int | None) -> None:
        return None

    def update(self, entries: int, bytes_read: int) -> None:
        return None

    def end_file(self) -> None:
        return None


def progress_for(stream: IO[str]) -> ImportProgress:
    """A bar when the stream is a terminal, plain lines otherwise."""
    console = Console(file=stream)
    return RichProgress(console) if console.is_terminal else PlainProgress(stream)
