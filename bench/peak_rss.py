"""A process's own peak RSS, and `diarybridge` run in-process to report it.

    python bench/peak_rss.py export --format fhir --out DIR ...   # any diarybridge arguments

ru_maxrss is no good for a child on Linux: exec keeps the high-water mark of the memory it
replaces, so a child of a large process (bench/run_all.py holds the FHIR models and test data)
reports its parent's size. VmHWM in /proc/self/status belongs to the memory map made at exec,
so it is the child's own. The last line on stderr is `peak_rss_kb N`.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def own_peak_rss_kb() -> int:
    """This process's peak RSS in KiB since its exec (VmHWM); ru_maxrss where /proc is absent."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from service.cli import main as diarybridge

    try:
        return diarybridge(sys.argv[1:])
    finally:
        print(f"peak_rss_kb {own_peak_rss_kb()}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
