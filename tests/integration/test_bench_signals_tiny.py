"""bench/bench_signals.py runs end to end at a tiny size and prints its ratios.

Not a timed test: it keeps the bench from rotting, and the bench itself asserts that the stable
course raises nothing and that the stored signals equal the whole-history evaluation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_signals_tiny_prints_the_ratio_against_the_accept_path() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIARYBRIDGE_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_signals.py"),
            "--history",
            "20",
            "--rounds",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for clock in ("wall", "cpu"):
        for path in ("accept_records", "POST /sync"):
            found = re.search(
                rf"\[{clock}\] {path}: without signals [0-9.]+ ms, with [0-9.]+ ms .*"
                rf"ratio ([0-9.-]+) \(goal < 1\.10\) met\? (yes|no)",
                done.stdout,
            )
            assert found, done.stdout
            assert float(found.group(1)) > 0
