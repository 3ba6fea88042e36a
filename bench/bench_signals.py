"""Signal evaluation cost per accepted record, as a ratio to the accept path without signals.

For a patient with a history of H days of daily diary entries and an infusion every 4 weeks
(SQLite outbox in a temp dir), each round accepts one new diary entry three ways, interleaved
so the machine's drift hits all alike, and times each:

- reference: the accept path without signals (accept_items + store.accept, one transaction);
- ours: accept_records, which also keeps the patient's stored signals current (the hook);
- before: the evaluation that ran per delivered batch before signals were stored (the
  patient's whole history from the ledger, all rules), added to the reference.

Prints the medians and the extra cost of signals (the median of the per-round differences) as a
ratio to the reference timed in the same run, by wall clock and by this process's CPU time (the
CPU figure is steadier on a shared machine, where waits for the disk swing the wall clock);
goal: under 10% extra:

    PYTHONPATH=. .venv/bin/python bench/bench_signals.py [--history 90] [--rounds 50]

Synthetic data only.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mappings.records import PatientRef, Record
from mappings.signals import default_rules
from service import store
from service.app import create_app
from service.config import Settings
from service.signals import evaluate_patient, patient_signals
from service.sync.accept import accept_items, accept_records
from tests.conftest import KEYS, PATIENT, make_env
from tests.unit.mappings.signal_courses import entry, stable

NAMESPACE = KEYS["diary_app"]["client_id"]
GOAL = 0.10  # extra cost of signals per accepted record, as a share of the accept path


Timing = tuple[float, float]  # wall seconds, CPU seconds of this process


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(run: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=90, help="days of daily entries before")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--per-day", type=int, default=4, help="new diary entries a day")
    parser.add_argument("--batch", type=int, default=1, help="entries per accept request")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    patient = PatientRef(reference=PATIENT)
    rules = default_rules()
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp), DIARYBRIDGE_SYNC_ASYNC="true")
        app = create_app(Settings.from_env(env))
        sessions = app.extensions["diarybridge.sessions"]
        history: list[Record] = stable(args.history, patient=patient)
        accept_records(sessions, NAMESPACE, history)
        plain_s: list[Timing] = []
        hooked_s: list[Timing] = []
        whole_s: list[Timing] = []
        for n in range(args.rounds):
            day = args.history + n / args.per_day  # the new entries, in time order
            new = [
                replace(entry(day + k / 1000, 3, patient=patient), entry_id=f"bench-{n}-{k}")
                for k in range(args.batch)
            ]
            hooked = [replace(r, entry_id=f"bench-hook-{n}-{k}") for k, r in enumerate(new)]

            def plain(batch: list[Record] = new) -> None:
                items = accept_items(NAMESPACE, batch)
                with sessions.begin() as session:
                    store.accept(session, NAMESPACE, items)

            def with_signals(batch: list[Record] = hooked) -> None:
                accept_records(sessions, NAMESPACE, batch, signal_rules=rules)

            # Alternating which goes first, so neither always meets a warmer cache.
            if n % 2:
                hooked_s.append(_timed(with_signals))
                plain_s.append(_timed(plain))
            else:
                plain_s.append(_timed(plain))
                hooked_s.append(_timed(with_signals))
            whole_s.append(_timed(lambda: evaluate_patient(sessions, PATIENT, rules)))
            found = evaluate_patient(sessions, PATIENT, rules)
            assert not any(s.signal.active for s in found), "the stable course raised a signal"
        # The stored state is what the whole history gives (the bench's own sanity check).
        assert patient_signals(sessions, PATIENT, rules) == evaluate_patient(
            sessions, PATIENT, rules
        )
    records = len(history) + 2 * args.rounds * args.batch
    print(
        f"history: {len(history)} records at start, {records} at the end; {args.rounds} rounds, "
        f"{args.per_day} new entries a day, {args.batch} per request"
    )
    for clock, pick in (("wall", 0), ("cpu", 1)):
        plain_ms = _median_ms([t[pick] for t in plain_s])
        hooked_ms = _median_ms([t[pick] for t in hooked_s])
        whole_ms = _median_ms([t[pick] for t in whole_s])
        # Paired by round (the two accepts run back to back): the machine's drift cancels out.
        extra_ms = _median_ms([h[pick] - p[pick] for h, p in zip(hooked_s, plain_s, strict=True)])
        extra = extra_ms / plain_ms
        met = "yes" if extra < GOAL else "no"
        print(
            f"[{clock}] reference: accept without signals, per request: {plain_ms:7.2f} ms (median)"
        )
        print(f"[{clock}] ours: accept + stored signals (window):      {hooked_ms:7.2f} ms")
        print(f"[{clock}] before: whole-history evaluation per batch:  {whole_ms:7.2f} ms")
        print(
            f"[{clock}] signals extra, before: {100 * whole_ms / plain_ms:6.1f} % of the reference"
        )
        print(f"[{clock}] signals extra, now:    {100 * extra:6.1f} % ({extra_ms:.2f} ms)")
        print(
            f"[{clock}] ratio ours/reference: {1 + extra:.3f} (goal < {1 + GOAL:.2f}); met? {met}"
        )


if __name__ == "__main__":
    main()
