"""Push: map claimed ledger entries to FHIR and write them to the clinic's server, idempotently.

The only layer that joins the store's entries, the mappings and the FHIR client. It decides the
outcome of each entry; the caller records it in the ledger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import mappings
from mappings.context import FhirVersion, MappingContext, client_source
from mappings.errors import MappingError
from mappings.record_json import record_from_json
from mappings.records import CORE_RESOURCE_TYPES, RecordKind
from service.fhir_client import (
    ConditionalCreate,
    EntryResult,
    FhirClient,
    FhirClientError,
    FhirServerError,
    FhirTransportError,
    Limits,
    NotFound,
    NotSent,
    PreconditionFailed,
    PushStrategy,
    ServerCapabilities,
    ServerProfile,
    Update,
    WriteResult,
    clean_diagnostics,
)
from service.store import ClaimedEntry, ErrorInfo, ResourceState
from service.sync import shared_ids
from service.sync.plan import (
    PlannedWrite,
    RecordPlan,
    chunks,
    fits,
    plan_record,
    rewrite_references,
    transaction_of,
)
from service.sync.subjects import WITHHELD, is_patients

log = logging.getLogger(__name__)

PUSHED_TYPES = RecordKind.INFUSION.resource_types  # every type any kind is stored as
# Needed for every record; the others repeat what these hold (an infusion's AdverseEvent points
# at its symptom Observations), so a server that cannot write them (see _takes) gets the record
# without them rather than nothing (SEKMET lists no AdverseEvent).
REQUIRED_TYPES = CORE_RESOURCE_TYPES
# A server that answers these for one entry has judged that entry; sending it again won't help.
PERMANENT = {
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.FORBIDDEN,
    HTTPStatus.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED,
    HTTPStatus.CONFLICT,
    HTTPStatus.GONE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
}

# A one-record conditional transaction refused with these may be too big, not wrong.
SPLIT_ON = {
    HTTPStatus.BAD_REQUEST,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    HTTPStatus.UNPROCESSABLE_ENTITY,
}


class ForeignSubjectError(Exception):
    """The server's resource at an id we hold belongs to another patient: we leave it alone."""

    def __init__(self, resource_type: str, server_id: str) -> None:
        super().__init__(f"{resource_type}/{server_id} has another subject than the record")


class Outcome(StrEnum):
    """What happened to one entry on this push."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"  # permanent: the server rejected it
    RETRY = "retry"  # transient: try again later
    CONFLICT = "conflict"  # the server's copy changed since we last sent it
    RETRACTED = "retracted"


# Deliveries after which the server holds the record's content.
DELIVERED = (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED)


@dataclass(frozen=True)
class Delivery:
    """The result of pushing one claimed entry."""

    entry: ClaimedEntry
    outcome: Outcome
    resources: tuple[ResourceState, ...] = ()
    error: ErrorInfo | None = None
    server_versions: dict[str, Any] | None = field(default=None)
    retry_after: float | None = None  # seconds the server asked us to wait (Retry-After)
    # False: nothing was sent for this entry (time budget spent, circuit open); it goes back
    # to the queue as it was, due at once and with no attempt used up.
    attempted: bool = True


def error_info(exc: Exception) -> ErrorInfo:
    """What we keep of an error: status, issue code, severity, expression; no bodies.

    Diagnostics are cleaned and ride along for this request's system/* callers only.
    """
    if isinstance(exc, FhirServerError):
        issue = exc.outcome.issues[0] if exc.outcome and exc.outcome.issues else None
        return ErrorInfo(
            status=exc.status,
            code=issue.code if issue else HTTPStatus(exc.status).phrase.lower().replace(" ", "_"),
            diagnostics=clean_diagnostics(issue.diagnostics or issue.details_text)
            if issue
            else None,
            severity=issue.severity if issue else None,
            expression=issue.expression if issue else (),
        )
    return ErrorInfo(status=None, code=type(exc).__name__, diagnostics=None)


def _state(write: PlannedWrite, result: WriteResult) -> ResourceState:
    return ResourceState(
        resource_type=write.resource_type,
        identifier_system=write.identifier[0],
        identifier_value=write.identifier[1],
        server_id=result.id,
        version_id=result.version_id,
        etag=result.etag,
        last_sent_hash=write.content_hash,
    )


class Pusher:
    """Pushes ledger entries to one FHIR server as its profile allows (methods, transport, caps)."""

    def __init__(
        self,
        client: FhirClient,
        *,
        chunk_size: int = 200,
        method: str = "auto",
        request_id: str | None = None,
        mg_adl_questionnaire_response: bool = False,
    ) -> None:
        self.client = client
        self.mg_adl_questionnaire_response = mg_adl_questionnaire_response
        self._chunk_size = chunk_size  # configured: entries per Bundle at most
        self._method = method
        self.request_id = request_id
        self._left_out: tuple[str, ...] = ()  # types this server cannot take (see strategy)

    @property
    def profile(self) -> ServerProfile:
        """What we know of the server (capabilities read once; limits shared per server)."""
        return self.client.profile()

    @property
    def limits(self) -> Limits:
        """What one Bundle may carry: the server's profile within our configured chunk size."""
        return self.profile.limits.within(Limits(transaction_entries=self._chunk_size))

    @property
    def chunk_size(self) -> int:
        """Entries one Bundle may carry now (configured, known or learned of the server)."""
        return self.limits.transaction_entries or self._chunk_size

    def strategy(self) -> PushStrategy:
        """The server's cheapest idempotent method and best transport (or the configured method)."""
        profile = self.profile
        types = REQUIRED_TYPES + (("QuestionnaireResponse",) if self._sends_responses() else ())
        chosen = profile.strategy(types)
        if self._method != "auto":
            chosen = replace(chosen, method=self._method)  # type: ignore[arg-type]
        self._left_out = tuple(
            t
            for t in PUSHED_TYPES
            if t not in REQUIRED_TYPES and not _takes(profile.capabilities, t, chosen)
        )
        return chosen

    def _sends_responses(self) -> bool:
        """MG-ADL QuestionnaireResponses too: asked for, and the server keeps that type. A server
        that lists no QuestionnaireResponse gets the Observation alone (it holds the whole
        MG-ADL), rather than no push at all."""
        return (
            self.mg_adl_questionnaire_response
            and self.client.capabilities().resource("QuestionnaireResponse") is not None
        )

    def version(self) -> FhirVersion:
        """The FHIR version the server speaks."""
        return FhirVersion(self.client.capabilities().release)

    def _resources(self, entry: ClaimedEntry, version: FhirVersion) -> list[dict[str, Any]]:
        record = record_from_json(RecordKind(entry.kind), entry.record)
        ctx = MappingContext(
            app_namespace=entry.namespace,
            source=client_source(entry.namespace),
            fhir_version=version,
            # The identifiers the record was first stored with (ledger.accept decided).
            patient_scope=entry.patient_scope or None,
            mg_adl_questionnaire_response=self._sends_responses(),
        )
        resources = mappings.record_to_resources(record, ctx)
        return [r for r in resources if r["resourceType"] not in self._left_out]

    def push(self, entries: Sequence[ClaimedEntry]) -> list[Delivery]:
        """Push entries in chunked Bundles; one bad entry does not hide the others' results."""
        if not entries:
            return []
        started = time.monotonic()
        try:
            strategy = self.strategy()
            version = self.version()
        except FhirClientError as exc:
            return [_unsent(e, exc) for e in entries]
        results: dict[int, Delivery] = {}
        plans: list[RecordPlan] = []
        for index, entry in enumerate(entries):
            plan, delivery = self._plan(entry, strategy, version)
            plans.append(plan)
            if delivery is not None:
                results[index] = delivery
        # One shared-id lookup per chunk; a chunk's transactions keep the conditional cap too.
        for group in chunks(plans, self.chunk_size):
            results.update(self._send(entries, plans, group, strategy))
        deliveries = [results[i] for i in range(len(entries))]
        log.info(
            "pushed %d entries via %s/%s in %.2fs: %s",
            len(entries),
            strategy.method,
            strategy.transport,
            time.monotonic() - started,
            _counts(deliveries),
        )
        return deliveries

    def _plan(
        self, entry: ClaimedEntry, strategy: PushStrategy, version: FhirVersion
    ) -> tuple[RecordPlan, Delivery | None]:
        """The entry's writes, and its delivery when nothing is left to send."""
        if entry.retract:
            return NOTHING, self._withdraw(entry)
        try:
            plan = plan_record(self._resources(entry, version), entry.resources, strategy.method)
        except MappingError as exc:
            # Stored before a rule changed, or a mapping bug: this entry cannot be sent.
            log.error("entry %s cannot be mapped: %s", entry.ledger_id, type(exc).__name__)
            return NOTHING, Delivery(entry, Outcome.FAILED, error=ErrorInfo(code="unmappable"))
        return plan, None if plan.writes else self._finish(entry, plan, [])

    def _send(
        self,
        entries: Sequence[ClaimedEntry],
        plans: Sequence[RecordPlan],
        group: list[int],
        strategy: PushStrategy,
    ) -> dict[int, Delivery]:
        """One chunk: refuse what would land on another patient's resource, send the rest."""
        try:
            results = self._refuse_foreign(entries, plans, group, strategy)
        except FhirClientError as exc:
            return self._failures(entries, plans, group, exc)
        rest = [i for i in group if i not in results]
        if not rest:
            return results
        if strategy.transport == "transaction":
            results.update(self._in_parts(entries, plans, self._transactions(plans, rest)))
        elif strategy.transport == "batch" and strategy.method == "update-as-create":
            results.update(self._by_batch(entries, plans, rest))
        else:
            results.update(self._each_alone(entries, plans, rest))
        return results

    # ---- the shared id space ---------------------------------------------------------

    def _refuse_foreign(
        self,
        entries: Sequence[ClaimedEntry],
        plans: Sequence[RecordPlan],
        group: list[int],
        strategy: PushStrategy,
    ) -> dict[int, Delivery]:
        """Fail the records whose first blind write would land on another patient's resource
        (see shared_ids): `foreign_subject`, nothing sent."""
        if not shared_ids.looks_up(strategy.method):
            return {}
        by_id = strategy.method == "update-as-create"
        blind = shared_ids.blind_writes(entries, plans, group, by_id)
        if not blind:
            return {}
        found = shared_ids.existing_resources(self.client, blind, by_id, self.request_id)
        owners = shared_ids.foreign_owners(found, blind, entries, by_id)
        return {
            index: _foreign(entries[index], write.resource_type, their_id, "id")
            for index, (write, their_id) in owners.items()
        }

    # ---- transports -----------------------------------------------------------------

    def _by_transaction(
        self, entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], group: list[int]
    ) -> dict[int, Delivery]:
        if len(group) == 1 and not fits(plans[group[0]], self.limits):
            # Known or learned: this server refuses so many conditional writes in one go.
            return self._each_alone(entries, plans, group)
        bundle = transaction_of(plans[i] for i in group)
        try:
            results = self.client.transaction(bundle, idempotent=True, request_id=self.request_id)
        except FhirServerError as exc:
            return self._refused(entries, plans, group, exc)
        except FhirClientError as exc:
            return self._failures(entries, plans, group, exc)
        return self._finished(entries, plans, group, results)

    def _refused(
        self,
        entries: Sequence[ClaimedEntry],
        plans: Sequence[RecordPlan],
        group: list[int],
        exc: FhirServerError,
    ) -> dict[int, Delivery]:
        """A refused transaction: find the bad record, or a size the server takes."""
        if len(group) > 1 and isinstance(exc, PreconditionFailed):
            # A stale If-Match says nothing about size: find the record alone, and keep
            # the chunk size (halving it here shrank every later Bundle, to 1 entry).
            return self._in_parts(entries, plans, [[index] for index in group])
        if len(group) > 1 and _maybe_too_big(exc):
            return self._halved(entries, plans, group)
        if len(group) == 1 and _conditional(plans[group[0]]) and exc.status in SPLIT_ON:
            return self._conditional_alone(entries, plans, group[0])
        return self._failures(entries, plans, group, exc)

    def _transactions(self, plans: Sequence[RecordPlan], group: list[int]) -> list[list[int]]:
        """The group in transactions within the profile's limits (known, configured, learned)."""
        mine = [plans[i] for i in group]
        parts = chunks(mine, self.chunk_size, self.limits.conditional_entries)
        return [[group[i] for i in part] for part in parts]

    def _halved(
        self, entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], group: list[int]
    ) -> dict[int, Delivery]:
        """The generic fallback for a cap the profile did not know. All or nothing, so either
        one entry is bad or the Bundle is bigger than this server takes: retry the records in
        Bundles of half the size. A bad record ends up alone, the rest pass. Only when every
        smaller Bundle passes was it the size, and only then does the profile learn it."""
        sent = sum(plans[i].size for i in group)
        size = max(1, min(self.chunk_size, sent // 2))
        log.info("transaction of %d entries refused; trying <= %d entries", sent, size)
        mine = [plans[i] for i in group]
        cap = self.limits.conditional_entries
        parts = [[group[i] for i in part] for part in chunks(mine, size, cap)]
        if len(parts) == 1:  # one record bigger than the ceiling: split records
            parts = [[index] for index in group]
        out = self._in_parts(entries, plans, parts)
        if all(d.outcome is not Outcome.FAILED for d in out.values()):  # else: a bad record
            self._learn_cap(plans, group, size)
        return out

    def _learn_cap(self, plans: Sequence[RecordPlan], group: list[int], size: int) -> None:
        conditional = sum(plans[i].conditional_size for i in group)
        if conditional:
            # Medplum caps conditional writes apart from all writes: remember that cap (for
            # every Pusher of this server), not a smaller Bundle for plain writes.
            self.profile.learn_conditional_cap(max(1, conditional // 2))
        else:
            self.profile.learn_transaction_cap(size)

    def _conditional_alone(
        self, entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], index: int
    ) -> dict[int, Delivery]:
        """One record's conditional writes refused: likely more than the server allows in one
        transaction (Medplum: 8 conditional entries; a diary entry makes ~13), so it could
        never arrive. Send it as the single transport does; a bad resource is then refused on
        its own."""
        alone = self._one_by_one(entries[index], plans[index])
        if alone.outcome in DELIVERED:
            # Every write passed on its own: it was the number of conditional writes.
            # Later records this size go one by one at once, without a refusal first.
            self.profile.learn_conditional_cap(plans[index].conditional_size - 1)
        return {index: alone}

    def _in_parts(
        self, entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], parts: list[list[int]]
    ) -> dict[int, Delivery]:
        out: dict[int, Delivery] = {}
        for part in parts:
            out.update(self._by_transaction(entries, plans, part))
        return out

    def _finished(
        self,
        entries: Sequence[ClaimedEntry],
        plans: Sequence[RecordPlan],
        group: list[int],
        results: Sequence[EntryResult],
    ) -> dict[int, Delivery]:
        """Each record's share of a passed transaction, settled."""
        out: dict[int, Delivery] = {}
        position = 0
        for index in group:
            size = plans[index].size
            out[index] = self._finish(
                entries[index], plans[index], results[position : position + size]
            )
            position += size
        return out

    def _failures(
        self,
        entries: Sequence[ClaimedEntry],
        plans: Sequence[RecordPlan],
        group: list[int],
        exc: Exception,
    ) -> dict[int, Delivery]:
        return {i: self._failure(entries[i], plans[i], exc) for i in group}

    def _each_alone(
        self, entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], group: list[int]
    ) -> dict[int, Delivery]:
        return {i: self._one_by_one(entries[i], plans[i]) for i in group}

    def _by_batch(
        self, entries: Sequence[ClaimedEntry], plans: Sequence[RecordPlan], group: list[int]
    ) -> dict[int, Delivery]:
        bundle = transaction_of((plans[i] for i in group), kind="batch")
        try:
            results = self.client.batch(bundle, idempotent=True, request_id=self.request_id)
        except FhirClientError as exc:
            return self._failures(entries, plans, group, exc)
        out: dict[int, Delivery] = {}
        position = 0
        for index in group:
            size = plans[index].size
            mine = results[position : position + size]
            position += size
            failed = next((r for r in mine if not r.ok), None)
            if failed is None:
                out[index] = self._finish(entries[index], plans[index], mine)
            else:
                exc = FhirServerError(
                    failed.status,
                    method="PUT",
                    path=failed.resource_type or "?",
                    outcome=failed.outcome,
                )
                out[index] = self._failure(entries[index], plans[index], exc)
        return out

    def _one_by_one(self, entry: ClaimedEntry, plan: RecordPlan) -> Delivery:
        # Referenced resources first (an infusion's administration before its reactions).
        writes = sorted(plan.writes, key=lambda w: w.resource_type != "MedicationAdministration")
        located: dict[str, str] = {}
        results: dict[str, WriteResult] = {}
        try:
            for write in writes:
                body = rewrite_references(write.body, located)
                result = self.client.write(
                    write.interaction.with_resource(body), request_id=self.request_id
                )
                results[write.full_url] = result
                if result.id:
                    located[write.full_url] = f"{write.resource_type}/{result.id}"
        except FhirClientError as exc:
            return self._failure(entry, plan, exc)
        ordered = [results[w.full_url] for w in plan.writes]
        return self._finish(entry, plan, ordered)

    # ---- outcomes -------------------------------------------------------------------

    def _finish(
        self, entry: ClaimedEntry, plan: RecordPlan, results: Sequence[WriteResult | EntryResult]
    ) -> Delivery:
        try:
            settled = self._settle_existing(entry, plan, results)
        except FhirClientError as exc:
            return self._failure(entry, plan, exc)
        if isinstance(settled, Delivery):
            return settled
        written, found = settled
        states = [_state(w, r) for w, r in zip(plan.writes, written, strict=True)]
        states.extend(plan.unchanged)
        if plan.dropped:
            retracted = self._retract_dropped(entry, plan)
            if isinstance(retracted, Delivery):
                return retracted
            states.extend(retracted)
        return Delivery(entry, _outcome(plan, found), tuple(states))

    def _retract_dropped(
        self, entry: ClaimedEntry, plan: RecordPlan
    ) -> list[ResourceState] | Delivery:
        """Withdraw what the record no longer produces; a Delivery when that failed."""
        try:
            return self.retract(plan.dropped, entry.patient_key)
        except ForeignSubjectError:
            return Delivery(entry, Outcome.FAILED, error=ErrorInfo(code="foreign_subject"))
        except FhirClientError as exc:
            return self._failure(entry, plan, exc)

    def _settle_existing(
        self, entry: ClaimedEntry, plan: RecordPlan, results: Sequence[WriteResult | EntryResult]
    ) -> tuple[list[WriteResult], list[_Found]] | Delivery:
        """Make the server hold our content where a conditional create found a resource.

        A 200 to a conditional create means the server already had a resource with our
        identifier the ledger did not know (ledger lost, a second instance, a migrated
        database) and did NOT take our content. Recording it as sent would make every resend
        `unchanged` while server and app disagree, so: read it, refuse it if it is another
        patient's, keep it if it already equals ours, else update it with If-Match on the
        version just read (a 412 then is a conflict, nothing overwritten).
        """
        found = [
            _Found.EXISTING if _existing(w, r) else _Found.NEW
            for w, r in zip(plan.writes, results, strict=True)
        ]
        written: list[WriteResult] = list(results)
        # Where each resource of this record lives now, for the references in our bodies.
        located = {
            w.full_url: f"{w.resource_type}/{r.id}"
            for w, r in zip(plan.writes, results, strict=True)
            if r.id
        }
        for index, write in enumerate(plan.writes):
            if found[index] is not _Found.EXISTING:
                continue
            settled = self._settle_one(entry, write, results[index], located)
            if isinstance(settled, Delivery):
                return settled
            found[index], written[index] = settled
        return written, found

    def _settle_one(
        self, entry: ClaimedEntry, write: PlannedWrite, result: WriteResult, located: dict[str, str]
    ) -> tuple[_Found, WriteResult] | Delivery:
        """One resource a conditional create found: keep it, update it, or refuse it."""
        server_id = result.id
        if server_id is None:
            # A 200 without a location: we cannot tell which resource holds our identifier,
            # and asking again gets the same answer.
            return Delivery(entry, Outcome.FAILED, error=ErrorInfo(code="no_location"))
        theirs = self.client.read(write.resource_type, server_id, request_id=self.request_id)
        if not is_patients(theirs, entry.patient_key):
            return _foreign(entry, write.resource_type, server_id, "identifier")
        ours = rewrite_references(write.body, located)
        ours["id"] = server_id
        version = (theirs.get("meta") or {}).get("versionId")
        if _content(ours) == _content(theirs):
            return _Found.SAME, replace(result, version_id=version, etag=None)
        try:
            update = Update(ours, if_match=version)
            return _Found.EXISTING, self.client.write(update, request_id=self.request_id)
        except PreconditionFailed as exc:
            copies = {
                f"{write.resource_type}/{server_id}": {
                    "ours": ours,
                    "theirs": self._read_or_none(write.resource_type, server_id),
                    "version_we_last_saw": version,
                }
            }
            return Delivery(entry, Outcome.CONFLICT, error=error_info(exc), server_versions=copies)

    def _failure(self, entry: ClaimedEntry, plan: RecordPlan, exc: Exception) -> Delivery:
        info = error_info(exc)
        if isinstance(exc, PreconditionFailed):
            copies = self._server_copies(entry, plan)
            return Delivery(entry, Outcome.CONFLICT, error=info, server_versions=copies)
        if isinstance(exc, FhirServerError) and exc.status in PERMANENT:
            return Delivery(entry, Outcome.FAILED, error=info)
        if isinstance(exc, FhirServerError | FhirTransportError | FhirClientError):
            return Delivery(
                entry,
                Outcome.RETRY,
                error=info,
                retry_after=_retry_after(exc),
                attempted=not isinstance(exc, NotSent),
            )
        raise exc

    def _server_copies(self, entry: ClaimedEntry, plan: RecordPlan) -> dict[str, Any]:
        """The server's current copies of what we tried to update, to show beside ours."""
        copies: dict[str, Any] = {}
        for write in plan.writes:
            if not write.is_update or write.known is None or write.known.server_id is None:
                continue
            copy: dict[str, Any] = {
                "ours": write.body,
                "version_we_last_saw": write.known.version_id,
            }
            copy.update(self._their_copy(entry, write.resource_type, write.known.server_id))
            copies[f"{write.resource_type}/{write.known.server_id}"] = copy
        return copies

    def _their_copy(
        self, entry: ClaimedEntry, resource_type: str, server_id: str
    ) -> dict[str, Any]:
        # Another patient's resource is never stored nor shown (nor its version adopted on a
        # requeue): the conflict then stays until someone sorts out the server.
        theirs = self._read_or_none(resource_type, server_id)
        if theirs is not None and not is_patients(theirs, entry.patient_key):
            log.warning("%s/%s: another subject on the server; withheld", resource_type, server_id)
            return {"theirs": None, "withheld": WITHHELD}
        return {"theirs": theirs}

    def _withdraw(self, entry: ClaimedEntry) -> Delivery:
        """The app deleted the record: mark what we sent entered-in-error."""
        try:
            retracted = self.retract(entry.resources, entry.patient_key)
            return Delivery(entry, Outcome.RETRACTED, tuple(retracted))
        except ForeignSubjectError:
            return Delivery(entry, Outcome.FAILED, error=ErrorInfo(code="foreign_subject"))
        except PreconditionFailed as exc:
            copies = {
                f"{s.resource_type}/{s.server_id}": {
                    "version_we_last_saw": s.version_id,
                    **self._their_copy(entry, s.resource_type, s.server_id),
                }
                for s in entry.resources
                if s.server_id is not None
            }
            return Delivery(entry, Outcome.CONFLICT, error=error_info(exc), server_versions=copies)
        except FhirClientError as exc:
            permanent = isinstance(exc, FhirServerError) and exc.status in PERMANENT
            outcome = Outcome.FAILED if permanent else Outcome.RETRY
            return Delivery(
                entry, outcome, error=error_info(exc), attempted=not isinstance(exc, NotSent)
            )

    def _read_or_none(self, resource_type: str, server_id: str) -> dict[str, Any] | None:
        try:
            return self.client.read(resource_type, server_id, request_id=self.request_id)
        except FhirClientError:
            return None

    def retract(self, states: Sequence[ResourceState], patient: str) -> list[ResourceState]:
        """Mark our resources entered-in-error on the server (never a hard delete).

        Only resources whose subject is `patient` (the record's): another's raises
        ForeignSubjectError before anything of it is changed.
        """
        done = []
        for state in states:
            if state.server_id is None:
                continue
            try:
                current = self.client.read(
                    state.resource_type, state.server_id, request_id=self.request_id
                )
            except NotFound:
                done.append(state)  # deleted on the server already: nothing left to withdraw
                continue
            if not is_patients(current, patient):
                raise ForeignSubjectError(state.resource_type, state.server_id)
            if current.get("status") == "entered-in-error":
                done.append(state)
                continue
            current["status"] = "entered-in-error"
            # The version we last saw: a clinician's edit since then is a conflict, not overwritten.
            version = state.version_id or (current.get("meta") or {}).get("versionId")
            result = self.client.update(current, if_match=version, request_id=self.request_id)
            done.append(replace(state, version_id=result.version_id, etag=result.etag))
        return done


class _Found(StrEnum):
    """What a write found on the server."""

    NEW = "new"  # created, or updated a resource the ledger knew
    EXISTING = "existing"  # a conditional create matched a resource the ledger did not know
    SAME = "same"  # ... which already held exactly our content


NOTHING = RecordPlan(writes=(), unchanged=())


def _existing(write: PlannedWrite, result: WriteResult) -> bool:
    """A conditional create answered 200, not 201: the server kept what it had."""
    return isinstance(write.interaction, ConditionalCreate) and result.status == HTTPStatus.OK


def _outcome(plan: RecordPlan, found: Sequence[_Found]) -> Outcome:
    """Created, updated or unchanged, from what the writes found."""
    changed = len(plan.writes) - found.count(_Found.SAME)
    if not changed and not plan.dropped:
        return Outcome.UNCHANGED
    known_before = any(w.is_update for w in plan.writes) or any(f is not _Found.NEW for f in found)
    if known_before or plan.dropped or plan.unchanged:
        return Outcome.UPDATED
    return Outcome.CREATED


def _foreign(entry: ClaimedEntry, resource_type: str, server_id: str, what: str) -> Delivery:
    """The record's `what` (id, identifier) is held by another patient's resource: failed."""
    # Ids and counts only: never the other patient's resource or reference.
    log.warning(
        "entry %s: %s/%s has the record's %s but another subject; not changed",
        entry.ledger_id,
        resource_type,
        server_id,
        what,
    )
    return Delivery(
        entry,
        Outcome.FAILED,
        error=ErrorInfo(
            code="foreign_subject",
            diagnostics=f"{resource_type}/{server_id} has this record's {what} but another "
            "subject; it was not changed",
        ),
    )


def _unsent(entry: ClaimedEntry, exc: FhirClientError) -> Delivery:
    """A retry for an entry whose push could not start (the server's capabilities unread)."""
    return Delivery(
        entry,
        Outcome.RETRY,
        error=error_info(exc),
        retry_after=_retry_after(exc),
        attempted=not isinstance(exc, NotSent),
    )


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource without what the server owns (id, meta, narrative), to compare contents."""
    return {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}


def _retry_after(exc: Exception) -> float | None:
    # The client waits out short Retry-Afters itself; a longer one must outlive its give-up.
    return exc.retry_after if isinstance(exc, FhirServerError) else None


def _maybe_too_big(exc: FhirServerError) -> bool:
    """A refusal that may mean "smaller", not "later" (5xx, 429) nor "never"."""
    return (
        exc.status < HTTPStatus.INTERNAL_SERVER_ERROR and exc.status != HTTPStatus.TOO_MANY_REQUESTS
    )


def _takes(caps: ServerCapabilities, resource_type: str, chosen: PushStrategy) -> bool:
    """Whether the server writes this type by PUT Type/id (update-as-create). Conditional writes
    of AdverseEvent would search `identifier`, which R4 does not define for it, and a server
    refusing that would fail the whole record."""
    res = caps.resource(resource_type)
    return (
        chosen.method == "update-as-create"
        and res is not None
        and "update" in res.interactions
        and res.update_create
    )


def _conditional(plan: RecordPlan) -> bool:
    """True when the plan has several writes and a conditional one (capped per transaction)."""
    return plan.size > 1 and plan.conditional_size > 0


def _counts(deliveries: Sequence[Delivery]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for delivery in deliveries:
        counts[delivery.outcome.value] = counts.get(delivery.outcome.value, 0) + 1
    return counts


__all__ = ["Delivery", "ForeignSubjectError", "Outcome", "Pusher", "error_info"]
