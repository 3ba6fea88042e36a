"""Signal evaluation cost per accepted record, as a ratio to the accept path without signals.

For a patient with a history of H days of daily diary entries and an infusion every 4 weeks
(SQLite outbox in a temp dir), each round accepts one new diary entry and then evaluates the
patient's signals the way the service does after a delivery (load the patient's records from
the ledger, evaluate all rules). Prints the median times and the extra cost in percent:

    PYTHONPATH=. .venv/bin/python bench/bench_signals.py [--history 90] [--rounds 50]

Two accept paths are the reference: the store use case alone (accept_records: one committed
transaction), and POST /sync/diary-entries answering 202 (validation, access check, accept,
audit). Synthetic data only.
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
from mappings.signals import default_rules, evaluate
from service import wiring
from service.app import create_app
from service.config import Settings
from service.schemas import dump_record
from service.signals import patient_signals
from service.sync.accept import accept_records
from tests.conftest import KEYS, PATIENT, make_env
from tests.unit.mappings.signal_courses import entry, stable

NAMESPACE = KEYS["diary_app"]["client_id"]


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=90, help="days of daily entries before")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the access log would dominate the HTTP timings
    patient = PatientRef(reference=PATIENT)
    rules = default_rules()
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp), DIARYBRIDGE_SYNC_ASYNC="true")
        app = create_app(Settings.from_env(env))
        sessions = wiring.of(app).sessions
        history: list[Record] = stable(args.history, patient=patient)
        accept_records(sessions, NAMESPACE, history)
        client = app.test_client()
        key = {"X-API-Key": KEYS["diary_app"]["key"]}
        accept_s, http_s, eval_s, pure_s = [], [], [], []
        for n in range(args.rounds):
            day = args.history + n / 4  # several entries a day, as the rounds go on
            new = replace(entry(day, 3, patient=patient), entry_id=f"bench-{n}")
            started = time.perf_counter()
            accept_records(sessions, NAMESPACE, [new])
            accept_s.append(time.perf_counter() - started)

            other = replace(new, entry_id=f"bench-http-{n}")
            started = time.perf_counter()
            answer = client.post("/sync/diary-entries", json=dump_record(other), headers=key)
            http_s.append(time.perf_counter() - started)
            assert answer.status_code == 202, answer.status_code

            started = time.perf_counter()
            found = patient_signals(sessions, PATIENT, rules)
            eval_s.append(time.perf_counter() - started)
            assert not any(s.signal.active for s in found), "the stable course raised a signal"

            started = time.perf_counter()
            evaluate(history, rules)
            pure_s.append(time.perf_counter() - started)
    records = len(history) + 2 * args.rounds
    accept_ms, http_ms = _median_ms(accept_s), _median_ms(http_s)
    eval_ms, pure_ms = _median_ms(eval_s), _median_ms(pure_s)
    print(f"history: {len(history)} records at start, {records} at the end; {args.rounds} rounds")
    print(f"accept_records, one entry:            {accept_ms:8.2f} ms (median)")
    print(f"POST /sync/diary-entries (202):       {http_ms:8.2f} ms")
    print(f"signals: ledger load + evaluate:      {eval_ms:8.2f} ms")
    print(f"signals: evaluate() alone ({len(history)} rec.): {pure_ms:8.2f} ms")
    print(f"extra per accepted record vs accept_records: {100 * eval_ms / accept_ms:7.1f} %")
    print(f"extra per accepted record vs POST /sync:     {100 * eval_ms / http_ms:7.1f} %")


if __name__ == "__main__":
    main()
