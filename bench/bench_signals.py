"""Signal evaluation cost per accepted record, as a ratio to the accept path without signals.

Two patients with the same history of H days of daily diary entries and an infusion every 4
weeks (SQLite outbox in a temp dir): one's records are accepted with the signals hook, the
other's with the hook switched off (the accept path without signals: the reference). Each
round accepts new diary entries for both, in alternating order so the machine's drift hits
both alike, two ways, and times each:

- accept_records: the accept use case (one committed transaction);
- POST /sync/diary-entries answering 202 (validation, access check, accept, audit);
- before: the evaluation that ran per delivered batch before signals were stored (the
  patient's whole history from the ledger, all rules), as a share of accept_records.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

import service.sync.accept as accept_module
from mappings.records import DiaryEntry, PatientRef, Record
from mappings.signals import default_rules
from service import wiring
from service.app import create_app
from service.config import Settings
from service.schemas import dump_record
from service.signals import evaluate_patient, patient_signals
from service.sync.accept import accept_records
from tests.conftest import KEYS, OTHER_PATIENT, PATIENT, make_env
from tests.unit.mappings.signal_courses import entry, stable

NAMESPACE = KEYS["batch"]["client_id"]
KEY = {"X-API-Key": KEYS["batch"]["key"]}  # a system client: writes for either patient
GOAL = 0.10  # extra cost of signals per accepted record, as a share of the accept path


Timing = tuple[float, float]  # wall seconds, CPU seconds of this process


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


@contextmanager
def _signals(on: bool) -> Iterator[None]:
    """The accept path with its signals hook, or without it (the reference)."""
    hook = accept_module.on_accepted  # type: ignore[attr-defined]
    if not on:
        accept_module.on_accepted = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        accept_module.on_accepted = hook  # type: ignore[attr-defined]


def _renamed(records: list[Record], tag: str) -> list[Record]:
    return [
        replace(r, entry_id=f"{tag}-{r.entry_id}")
        if isinstance(r, DiaryEntry)
        else replace(r, infusion_id=f"{tag}-{r.infusion_id}")
        for r in records
    ]


def _post(client: FlaskClient, body: list[dict[str, object]]) -> None:
    answer = client.post("/sync/diary-entries", json=body, headers=KEY)
    assert answer.status_code == 202, answer.status_code


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
    ours, reference = PatientRef(reference=PATIENT), PatientRef(reference=OTHER_PATIENT)
    rules = default_rules()
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp), DIARYBRIDGE_SYNC_ASYNC="true")
        app = create_app(Settings.from_env(env))
        sessions = wiring.of(app).sessions
        client = app.test_client()
        start = len(stable(args.history, patient=ours))
        tag = {True: "ours", False: "ref"}  # the app's ids are one space: one prefix a patient
        for patient in (ours, reference):
            with _signals(patient is ours):
                history = _renamed(stable(args.history, patient=patient), tag[patient is ours])
                accept_records(sessions, NAMESPACE, history)
        timings: dict[str, list[Timing]] = {k: [] for k in ("on", "off", "http-on", "http-off")}
        whole_s: list[Timing] = []
        for n in range(args.rounds):
            day = args.history + n / args.per_day  # the new entries, in time order
            order = (ours, reference) if n % 2 else (reference, ours)
            for patient in order:
                on = patient is ours
                batch: list[DiaryEntry] = [
                    replace(entry(day + k / 1000, 3, patient=patient), entry_id=f"{tag[on]}{n}-{k}")
                    for k in range(args.batch)
                ]
                body = [dump_record(replace(r, entry_id=f"h-{r.entry_id}")) for r in batch]

                def accept(b: list[DiaryEntry] = batch) -> None:
                    accept_records(sessions, NAMESPACE, b, signal_rules=rules)

                def post(b: list[dict[str, object]] = body) -> None:
                    _post(client, b)

                with _signals(on):
                    timings["on" if on else "off"].append(_timed(accept))
                    timings["http-on" if on else "http-off"].append(_timed(post))
            whole_s.append(_timed(lambda: evaluate_patient(sessions, PATIENT, rules)))
        found = evaluate_patient(sessions, PATIENT, rules)
        assert not any(s.signal.active for s in found), "the stable course raised a signal"
        # The stored state is what the whole history gives (the bench's own sanity check).
        assert patient_signals(sessions, PATIENT, rules) == found
    records = start + 2 * args.rounds * args.batch
    print(
        f"history: {start} records at start, {records} at the end per patient; "
        f"{args.rounds} rounds, {args.per_day} new entries a day, {args.batch} per request"
    )
    for clock, pick in (("wall", 0), ("cpu", 1)):
        for path, with_key, without_key in (
            ("accept_records", "on", "off"),
            ("POST /sync", "http-on", "http-off"),
        ):
            plain_ms = _median_ms([t[pick] for t in timings[without_key]])
            hooked_ms = _median_ms([t[pick] for t in timings[with_key]])
            # Paired by round (back to back): the machine's drift cancels out.
            pairs = zip(timings[with_key], timings[without_key], strict=True)
            extra_ms = _median_ms([h[pick] - p[pick] for h, p in pairs])
            extra = extra_ms / plain_ms
            met = "yes" if extra < GOAL else "no"
            print(
                f"[{clock}] {path}: without signals {plain_ms:.2f} ms, with {hooked_ms:.2f} ms "
                f"(medians); extra {extra_ms:.2f} ms = {100 * extra:.1f} %; "
                f"ratio {1 + extra:.3f} (goal < {1 + GOAL:.2f}) met? {met}"
            )
        plain_ms = _median_ms([t[pick] for t in timings["off"]])
        whole_ms = _median_ms([t[pick] for t in whole_s])
        print(
            f"[{clock}] before: whole-history evaluation per batch {whole_ms:.2f} ms = "
            f"{100 * whole_ms / plain_ms:.1f} % of accept_records"
        )


if __name__ == "__main__":
    main()
