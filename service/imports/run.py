"""Import files of records: read, validate, accept into the durable outbox in batches, push.

Memory stays flat however long the file: items are read one at a time, accepted `batch_size`
at a time, and only counts are kept. Each accepted batch is a sync request; when a worker is
given, that request is pushed before the next batch is read, so the outbox never holds a backlog.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from mappings.records import Record
from service import store
from service.imports.progress import ImportProgress, NoProgress
from service.imports.sources import CountingReader, RawItem, SourceFormat, read_items
from service.imports.validate import Checked, KindChoice, check_item
from service.schemas import RecordKind
from service.store import Disposition
from service.sync.accept import accept_records
from service.sync.push import Outcome
from service.sync.worker import Worker

log = logging.getLogger(__name__)

BATCH_SIZE = 500
Failure = dict[str, Any]


@dataclass
class ImportSummary:
    """Counts of one import; `unchanged` covers both the outbox's and the server's view."""

    read: int = 0
    invalid: int = 0
    accepted: int = 0
    queued: int = 0  # new or changed content, to be pushed
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0  # the server rejected it, or a conflict needs review
    retry_later: int = 0  # a transient error: left in the outbox for `diarybridge worker`
    pushed: bool = False
    files: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        if not self.pushed:
            return (
                f"read {self.read}: queued {self.queued}, unchanged {self.unchanged}, "
                f"invalid {self.invalid} (not pushed)"
            )
        text = (
            f"read {self.read}: created {self.created}, updated {self.updated}, "
            f"unchanged {self.unchanged}, failed {self.failed}, invalid {self.invalid}"
        )
        if self.retry_later:
            text += f"; {self.retry_later} left queued for retry"
        return text


class Importer:
    """Reads items, validates them, accepts batches into the outbox and optionally pushes them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        namespace: str,
        *,
        kind: KindChoice = KindChoice.AUTO,
        worker: Worker | None = None,
        batch_size: int = BATCH_SIZE,
        on_failure: Callable[[Failure], None] | None = None,
        progress: ImportProgress | None = None,
    ) -> None:
        self.sessions = sessions
        self.namespace = namespace
        self.kind = kind
        self.worker = worker
        self.batch_size = batch_size
        self.on_failure = on_failure or (lambda _: None)
        self.progress = progress or NoProgress()
        self.summary = ImportSummary(pushed=worker is not None)
        self._batch: dict[tuple[RecordKind, str], tuple[str, Record]] = {}
        self._file = ""

    def import_path(self, path: str, stdin: IO[bytes] | None = None) -> None:
        """Import one file ("-": standard input)."""
        with ExitStack() as stack:
            if path == "-":
                raw: IO[bytes] = stdin or sys.stdin.buffer
                total = None
            else:
                raw = stack.enter_context(open(path, "rb"))
                total = os.fstat(raw.fileno()).st_size
            counter = CountingReader(raw)
            text = io.TextIOWrapper(io.BufferedReader(counter), encoding="utf-8-sig", newline="")
            self.import_text(text, path, total, lambda: counter.bytes_read)
            text.detach()

    def import_text(
        self,
        text: IO[str],
        name: str,
        total_bytes: int | None = None,
        bytes_read: Callable[[], int] = lambda: 0,
    ) -> None:
        """Import one opened text stream named `name` (for positions in the failure report)."""
        self._file = name
        self.summary.files.append(name)
        hint = None if self.kind is KindChoice.AUTO else _KIND_HINT[self.kind]
        self.progress.start_file(name, total_bytes)
        before = self.summary.read
        try:
            fmt, items = read_items(text, name, hint)
            self.import_items(
                items, fmt, lambda: self.progress.update(self.summary.read - before, bytes_read())
            )
        except UnicodeDecodeError as exc:
            self._fail(f"byte {exc.start}", None, "$", "not UTF-8 text")
        finally:
            self.progress.end_file()

    def import_items(
        self, items: Iterable[RawItem], fmt: SourceFormat, tick: Callable[[], None] = lambda: None
    ) -> None:
        """Validate and accept items; every batch_size records go to the outbox together."""
        for item in items:
            self.summary.read += 1
            checked = check_item(item, self.kind, fmt)
            if checked.record is None:
                self._invalid(checked)
            else:
                self._add(checked)
            if self.summary.read % 100 == 0:
                tick()
        self.flush()
        tick()

    def _add(self, checked: Checked) -> None:
        assert checked.record is not None and checked.record_id is not None
        key = (checked.kind, checked.record_id)
        if key in self._batch:
            # The same record twice: accept the earlier one first, so the later one wins,
            # as if the app had sent it again.
            self.flush()
        self._batch[key] = (checked.position, checked.record)
        if len(self._batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Accept the pending batch in one transaction, then push it if a worker is set."""
        if not self._batch:
            return
        batch, self._batch = self._batch, {}
        try:
            self._accept(batch)
        except store.PatientMismatchError:
            # An id this app already gave another patient refuses the whole transaction: take
            # the records one by one, so only that one is rejected (and reported).
            for key, one in batch.items():
                try:
                    self._accept({key: one})
                except store.PatientMismatchError as exc:
                    self.summary.invalid += 1
                    self._fail(one[0], key[1], "patient", str(exc))

    def _accept(self, batch: dict[tuple[RecordKind, str], tuple[str, Record]]) -> None:
        records = [record for _, record in batch.values()]
        request_id = accept_records(self.sessions, self.namespace, records)
        self.summary.accepted += len(records)
        with self.sessions() as session:
            request = store.get_request(
                session, request_id, client_id=None, patients=store.Patients.every()
            )
        assert request is not None
        unchanged = sum(1 for i in request.items if i.disposition == Disposition.UNCHANGED)
        self.summary.unchanged += unchanged
        self.summary.queued += len(records) - unchanged
        if self.worker is not None and unchanged < len(records):
            self._push(request_id, batch)

    def _push(
        self, request_id: str, batch: dict[tuple[RecordKind, str], tuple[str, Record]]
    ) -> None:
        assert self.worker is not None
        for delivery in self.worker.drain(request_id):
            outcome = delivery.outcome
            if outcome is Outcome.CREATED:
                self.summary.created += 1
            elif outcome is Outcome.UPDATED:
                self.summary.updated += 1
            elif outcome is Outcome.UNCHANGED:
                self.summary.unchanged += 1
            elif outcome is Outcome.RETRY:
                self.summary.retry_later += 1
            else:
                self.summary.failed += 1
                entry = delivery.entry
                position, _ = batch.get((RecordKind(entry.kind), entry.source_id), ("?", None))
                error = delivery.error
                message = f"{outcome.value}: {error.code if error else 'rejected'}"
                if error and error.status:
                    message += f" (HTTP {error.status})"
                self._fail(position, entry.source_id, "$", message)

    def _invalid(self, checked: Checked) -> None:
        self.summary.invalid += 1
        for problem in checked.problems:
            self._fail(checked.position, checked.record_id, problem.field, problem.message)

    def _fail(self, position: str, record_id: str | None, field_name: str, message: str) -> None:
        self.on_failure(
            {
                "file": self._file,
                "position": position,
                "id": record_id,
                "field": field_name,
                "message": message,
            }
        )

    def finish(self) -> ImportSummary:
        """Accept (and push) what is left; the counts of the whole import."""
        self.flush()
        log.info(
            "import: %d read, %d invalid, %d queued, %d created, %d updated, %d failed",
            self.summary.read,
            self.summary.invalid,
            self.summary.queued,
            self.summary.created,
            self.summary.updated,
            self.summary.failed,
        )
        return self.summary


_KIND_HINT = {KindChoice.DIARY: RecordKind.DIARY_ENTRY.value, KindChoice.INFUSION: "infusion"}
