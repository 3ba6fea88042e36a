"""Start the test FHIR server by hand: `python -m tests.fhir_server [--port N] [--memory-only]`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from tests.fhir_server.launcher import FhirServerError, ensure_npm_dependencies, start_fhir_server


def main(argv: list[str] | None = None) -> int:
    """Install if needed, start, print the base URL, and run until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.fhir_server", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--data-dir", type=Path, default=None, help="journal and log folder")
    parser.add_argument("--memory-only", action="store_true", help="no journal file")
    args = parser.parse_args(argv)

    started = time.monotonic()
    installed = ensure_npm_dependencies()
    install_s = time.monotonic() - started
    try:
        server = start_fhir_server(args.port, data_dir=args.data_dir, persist=not args.memory_only)
    except FhirServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    start_s = time.monotonic() - started - install_s
    print(server.base_url, flush=True)
    print(
        f"npm ci: {'ran' if installed else 'not needed'} ({install_s:.1f} s); "
        f"start to /metadata: {start_s:.2f} s; log: {server.log_path}",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server.is_running():
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
