"""Signal evaluation cost per accepted record, as a ratio to the accept path without signals.

For a patient with a history of H days of daily diary entries and an infusion every 4 weeks
(SQLite outbox in a temp dir), each round accepts one new diary entry three ways, interleaved
so the machine's drift hits all alike, and times each:

- reference: the accept path without signals (accept_items + store.accept, one transaction);
- ours: accept_records, which also keeps the patient's stored signals current (the hook);
- before: the evaluation that ran per delivered batch before signals were stored (the
  patient's whole history from the ledger, all rules), added to the reference.

Prints the medians and the extra cost of signals as a ratio to the reference timed in the
same run (goal: under 10% extra):

    PYTHONPATH=. .venv/bin/python bench/bench_signals.py [--history 90] [--rounds 50]

Synthetic data only.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
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


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=90, help="days of daily entries before")
    parser.add_argument("--rounds", type=int, default=50)
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
        plain_s, hooked_s, whole_s = [], [], []
        for n in range(args.rounds):
            day = args.history + n / 4  # several entries a day, as the rounds go on
            new = replace(entry(day, 3, patient=patient), entry_id=f"bench-{n}")

            started = time.perf_counter()
            items = accept_items(NAMESPACE, [new])
            with sessions.begin() as session:
                store.accept(session, NAMESPACE, items)
            plain_s.append(time.perf_counter() - started)

            hooked = replace(new, entry_id=f"bench-hook-{n}")
            started = time.perf_counter()
            accept_records(sessions, NAMESPACE, [hooked], signal_rules=rules)
            hooked_s.append(time.perf_counter() - started)

            started = time.perf_counter()
            found = evaluate_patient(sessions, PATIENT, rules)
            whole_s.append(time.perf_counter() - started)
            assert not any(s.signal.active for s in found), "the stable course raised a signal"
        # The stored state is what the whole history gives (the bench's own sanity check).
        assert patient_signals(sessions, PATIENT, rules) == evaluate_patient(
            sessions, PATIENT, rules
        )
    records = len(history) + 2 * args.rounds
    plain, hooked, whole = _median_ms(plain_s), _median_ms(hooked_s), _median_ms(whole_s)
    extra = (hooked - plain) / plain
    before = whole / plain
    print(f"history: {len(history)} records at start, {records} at the end; {args.rounds} rounds")
    print(f"reference: accept without signals, one entry: {plain:8.2f} ms (median)")
    print(f"ours: accept + stored signals (window):      {hooked:8.2f} ms")
    print(f"before: whole-history evaluation per batch:  {whole:8.2f} ms")
    print(f"signals extra per accepted record, before: {100 * before:7.1f} % of the reference")
    print(f"signals extra per accepted record, now:    {100 * extra:7.1f} % of the reference")
    print(
        f"ratio ours/reference: {hooked / plain:.3f} (goal <= {1 + GOAL:.2f}); met? "
        f"{'yes' if extra < GOAL else 'no'}"
    )


if __name__ == "__main__":
    main()
