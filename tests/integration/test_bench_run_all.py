"""bench/run_all.py runs end to end at its tiny size and prints every row with a ratio.

Not a timed test: it keeps the bench scripts from rotting (an API they call renamed, a server
they start no longer starting), and checks that each row has a positive ratio.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "conversion in-process",
    "`diarybridge convert` CLI",
    "push, defaults",
    "pull, one patient",
    "`import --no-push`",
    "memory: import --no-push",
    "`import` with push",
    "`POST /convert/diary-entries`",
    "`POST /sync/diary-entries` async",
    "memory: export",
)


def test_run_all_tiny_prints_every_row_with_a_positive_ratio() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIARYBRIDGE_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--size", "tiny"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = lines.index("| path | ours | reference | ratio | goal | met? |")
    assert lines[header - 1].startswith("size tiny; machine: ")
    table = [line.split(" | ") for line in lines[header + 2 :] if line.startswith("| ")]
    for prefix, row in zip(ROWS, table, strict=True):  # every row, in order, none missing
        assert row[0].removeprefix("| ").startswith(prefix), (prefix, row)
    for row in table:
        assert len(row) == 6, row
        ratio = float(row[3])
        assert ratio > 0, row
        assert re.fullmatch(r"≥ [0-9.]+", row[4]), row
        assert row[5] in ("yes |", "no |"), row
