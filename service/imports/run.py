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
from collections import Counter
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
from service.sync.accept import accept_records
from service.sync.outcomes import RecordOutcome, request_outcomes
from service.sync.worker import Worker

log = logging.getLogger(__name__)

BATCH_SIZE = 500
Failure = dict[str, Any]


@dataclass
class ImportSummary:
    """Counts of one import, by each record's outcome in its batch's sync request.

    A record already in the outbox with the same content counts by where it stands: `unchanged`
    only if the server has it, else `failed` / `retry_later` / `queued` as it was left.
    """

    read: int = 0
    invalid: int = 0
    accepted: int = 0
    queued: int = 0  # not pushed (--no-push, no server): waiting in the outbox
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # the server already held this content
    failed: int = 0  # the server rejected it, or a conflict needs review
    retry_later: int = 0  # a transient error: left in the outbox for `diarybridge worker`
    retracted: int = 0  # withdrawn earlier (the app deleted it); the same content stays so
    superseded: int = 0  # replaced by newer content from someone else during the import
    pushed: bool = False
    files: list[str] = field(default_factory=list)
    # Why records are not on the server: "failed: invalid (HTTP 422)" -> how many.
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def not_delivered(self) -> int:
        """Records of the input the server does not hold (the exit status is 1 while any)."""
        waiting = self.retry_later if self.pushed else 0  # --no-push leaves them on purpose
        return self.failed + self.retracted + waiting

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        if not self.pushed:
            text = (
                f"read {self.read}: queued {self.queued}, unchanged {self.unchanged}, "
                f"failed {self.failed}, invalid {self.invalid} (not pushed)"
            )
        else:
            text = (
                f"read {self.read}: created {self.created}, updated {self.updated}, "
                f"unchanged {self.unchanged}, failed {self.failed}, invalid {self.invalid}"
            )
            if self.retry_later:
                text += f"; {self.retry_later} left queued for retry"
        if self.superseded:
            text += f"; {self.superseded} superseded by newer content"
        if self.not_delivered:
            why = ", ".join(f"{n} {reason}" for reason, n in self.reasons.most_common())
            text += f"; {self.not_delivered} not on the server: {why}"
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
        if self.worker is not None:
            # Also when every record is unchanged in the outbox: one left queued by an earlier
            # run is due now, and this run answers for it.
            self.worker.drain(request_id)
        for record in request_outcomes(self.sessions, request_id, with_resources=False):
            position, _ = batch.get((RecordKind(record.kind), record.source_id), ("?", None))
            self._count(record, position)

    def _count(self, record: RecordOutcome, position: str) -> None:
        summary, outcome = self.summary, record.outcome
        if outcome == "created":
            summary.created += 1
        elif outcome == "updated":
            summary.updated += 1
        elif outcome == "unchanged":
            summary.unchanged += 1
        elif outcome == "superseded":
            summary.superseded += 1  # someone sent newer content meanwhile: theirs to answer
        elif outcome == "queued" and self.worker is None:
            summary.queued += 1  # not pushed on purpose
        else:
            # Not on the server: say so, and why, in the summary and the failure report.
            if outcome == "queued":
                summary.retry_later += 1
            elif outcome == "retracted":
                summary.retracted += 1
            else:  # failed, conflict
                summary.failed += 1
            error = record.error
            message = f"{outcome}: {error.get('code') or 'rejected'}" if error else outcome
            if error and error.get("status"):
                message += f" (HTTP {error['status']})"
            summary.reasons[message] += 1
            self._fail(position, record.source_id, "$", message)

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
            "import: %d read, %d invalid, %d queued, %d created, %d updated, %d failed, "
            "%d not on the server",
            self.summary.read,
            self.summary.invalid,
            self.summary.queued,
            self.summary.created,
            self.summary.updated,
            self.summary.failed,
            self.summary.not_delivered,
        )
        return self.summary


_KIND_HINT = {
    KindChoice.DIARY: RecordKind.DIARY_ENTRY.value,
    KindChoice.INFUSION: RecordKind.INFUSION.value,
}
