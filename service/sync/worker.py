"""The delivery worker: claims queued ledger entries and pushes them, until told to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext

from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.fhir_client import time_budget
from service.store import ClaimedEntry
from service.sync.deliver import deliver
from service.sync.push import Delivery, Pusher

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 30.0
# Renewals per lease: a missed beat or two (a slow database) still leaves the claim held.
BEATS_PER_LEASE = 3


def worker_name() -> str:
    """host:pid:thread, so a claim in the ledger says who holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Worker:
    """Claims up to batch_size due entries under a lease, delivers them, records the outcomes."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        make_pusher: Callable[[], Pusher],
        *,
        batch_size: int = 200,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        idle_seconds: float = 2.0,
        name: str | None = None,
        after_delivery: Callable[[list[Delivery]], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.make_pusher = make_pusher
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds
        self.name = name or worker_name()
        # Called with each delivered batch (signals for the care team); must not raise.
        self.after_delivery = after_delivery
        self._pusher: Pusher | None = None

    @property
    def pusher(self) -> Pusher:
        """One pusher (and so one client session) per worker, made on first use."""
        if self._pusher is None:
            self._pusher = self.make_pusher()
        return self._pusher

    def run_once(self, request_id: str | None = None) -> list[Delivery]:
        """Claim one batch (of one request's entries, if given) and deliver it."""
        with self.sessions.begin() as session:
            claimed = store.claim_batch(
                session, self.name, self.batch_size, self.lease_seconds, request_id=request_id
            )
        if not claimed:
            return []
        with self._heartbeat(claimed):
            delivered = deliver(self.sessions, self.pusher, claimed)
        if self.after_delivery is not None:
            # After the lease work: the records are delivered whatever the signals do.
            self.after_delivery(delivered)
        return delivered

    @contextmanager
    def _heartbeat(self, claimed: Sequence[ClaimedEntry]) -> Iterator[None]:
        """Renew the batch's lease while it runs, so the lease can be short.

        A short lease is what bounds how long a crashed process's claims stay stuck; the
        heartbeat keeps a slow but live batch from being claimed twice.
        """
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_seconds / BEATS_PER_LEASE):
                try:
                    with self.sessions.begin() as session:
                        store.renew_claims(session, claimed, self.lease_seconds)
                except Exception as exc:  # the next beat tries again; the lease has slack
                    log.warning(
                        "sync worker %s: lease renewal failed: %s", self.name, type(exc).__name__
                    )

        thread = threading.Thread(target=beat, name="diarybridge-lease-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def drain(self, request_id: str | None = None, budget: float | None = None) -> list[Delivery]:
        """Deliver until nothing due is left (entries backing off stay queued for later).

        With a `budget` (seconds), FHIR calls stop when it is spent: what was not delivered by
        then stays queued for the worker. A batch of which nothing could be sent ends the drain.
        """
        done: list[Delivery] = []
        with time_budget(budget) if budget is not None else nullcontext():
            while batch := self.run_once(request_id):
                done.extend(batch)
                if not any(d.attempted for d in batch):
                    break
        return done

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; errors are logged and the loop goes on after a pause."""
        log.info("sync worker %s started", self.name)
        while not stop.is_set():
            try:
                delivered = self.run_once()
            except Exception:  # a worker must outlive one bad batch
                log.exception("sync worker %s: batch failed", self.name)
                delivered = []
            if not any(d.attempted for d in delivered):
                # Idle, or the server is refused (circuit open): don't spin on the queue.
                stop.wait(self.idle_seconds)
        log.info("sync worker %s stopped", self.name)
