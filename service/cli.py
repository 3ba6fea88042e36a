"""The `diarybridge` command: serve the API, or convert files with the same functions it uses."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from marshmallow import ValidationError

import mappings
from mappings import canonical
from mappings.context import FhirVersion, MappingContext, client_source
from service import json_input
from service.config import Settings, canonical_base_from_env
from service.schemas import RecordKind, flatten_messages, load_records

if TYPE_CHECKING:
    from service.sync.runtime import SyncRuntime

CHUNK = 500  # records mapped per step: bounded memory however long the file


def _parse(text: str, where: str) -> Any:
    try:
        return json_input.loads(text)
    except ValueError as exc:  # not JSON, or nested too deeply
        raise SystemExit(f"diarybridge convert: {where}: not usable JSON: {exc}") from None


def _records_from(stream: IO[str]) -> Iterator[tuple[str, Any]]:
    """Yield (position, JSON object) from a JSON array or NDJSON stream."""
    head = stream.read(1)
    while head and head.isspace():
        head = stream.read(1)
    if head == "[":
        items = _parse(head + stream.read(), "the array")
        for index, item in enumerate(items):
            yield f"[{index}]", item
        return
    for number, line in enumerate(itertools.chain([head + stream.readline()], stream), start=1):
        if line.strip():
            record = _parse(line, f"line {number}")
            yield f"line {number}", record


def _kind(item: Any) -> RecordKind:
    return RecordKind.of_json(item)


def convert_stream(
    source: IO[str], out: IO[str], ctx: MappingContext, output: str, bundle_type: str
) -> int:
    """Convert records to FHIR; returns the number of records. Invalid input stops with no output
    of the bad record and an error naming its position and field."""
    resources: list[dict[str, Any]] = []
    count = 0
    chunk: list[tuple[str, Any]] = []

    def flush() -> None:
        nonlocal count
        loaded = []
        for position, item in chunk:
            try:
                loaded.extend(load_records(item, _kind(item)))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{p.field}: {p.message}" for p in flatten_messages(exc.messages)
                )
                raise SystemExit(f"diarybridge convert: {position}: {problems}") from None
        mapped = mappings.to_resources(loaded, ctx)
        count += len(loaded)
        if output == "ndjson":
            out.writelines(
                json.dumps(resource, separators=(",", ":")) + "\n" for resource in mapped
            )
        else:
            resources.extend(mapped)
        chunk.clear()

    for position, item in _records_from(source):
        chunk.append((position, item))
        if len(chunk) >= CHUNK:
            flush()
    flush()
    if output == "bundle":
        bundle = (
            mappings.transaction_bundle(resources, ctx, "conditional-create")
            if bundle_type == "transaction"
            else mappings.collection_bundle(resources, ctx)
        )
        json.dump(bundle, out, indent=2)
        out.write("\n")
    return count


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from service import gunicorn_config

    settings = Settings.from_env()

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # The Dockerfile's settings and hooks (run dir, shared metrics, one page key) ...
            for name, value in vars(gunicorn_config).items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)
            # ... with this command's flags over them.
            self.cfg.set("bind", f"{args.host or settings.host}:{args.port or settings.port}")
            if args.workers:
                self.cfg.set("workers", args.workers)
            if args.threads:
                self.cfg.set("threads", args.threads)

        def load(self) -> Any:
            # In the worker, after the fork: its sync thread lives there, its settings include
            # what the master handed down, and prometheus_client is first imported with the
            # multiprocess directory already set.
            from service.app import create_app

            return create_app(Settings.from_env())

    _Server().run()
    return 0


def _sync_runtime(settings: Settings) -> SyncRuntime:
    """The store (migrated) and the FHIR server as a command outside the app needs them."""
    from mappings.signals import with_overrides
    from service.store import make_engine, make_session_factory, upgrade
    from service.sync.runtime import SyncRuntime

    engine = make_engine(settings.database_url)
    upgrade(engine)
    return SyncRuntime(
        settings.fhir,
        make_session_factory(engine),
        lease_seconds=settings.lease_seconds,
        batch_size=settings.worker_batch,
        signal_rules=with_overrides(settings.signal_rules),
        signal_care_team=settings.signal_care_team,
        mg_adl_questionnaire_response=settings.mg_adl_questionnaire_response,
    )


def _worker(args: argparse.Namespace) -> int:
    from service import observability

    settings = Settings.from_env()
    observability.configure_logging(settings.log_level, settings.log_format)
    if not settings.fhir.base_url:
        raise SystemExit("diarybridge worker: set DIARYBRIDGE_FHIR_BASE_URL")
    worker = _sync_runtime(settings).worker()
    if args.once:
        delivered = worker.drain()
        print(f"delivered {len(delivered)} entries", file=sys.stderr)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.parent_pid:
        # Started by a gunicorn master (serve): a master killed without its exit hook must not
        # leave a delivery worker behind.
        def watch_parent() -> None:
            while not stop.wait(1.0):
                if os.getppid() != args.parent_pid:
                    stop.set()

        threading.Thread(target=watch_parent, name="diarybridge-parent", daemon=True).start()
    worker.run(stop)
    return 0


def _convert(args: argparse.Namespace) -> int:
    ctx = MappingContext(
        app_namespace=args.app,
        source=client_source(args.app),
        fhir_version=FhirVersion(args.fhir_version),
        mg_adl_questionnaire_response=Settings.from_env().mg_adl_questionnaire_response,
    )
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for path in args.files:
            with sys.stdin if path == "-" else open(path, encoding="utf-8") as source:
                count = convert_stream(source, out, ctx, args.format, args.bundle)
                print(f"converted {count} record(s) from {path}", file=sys.stderr)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _export(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from service.exports import ExportRequestError, export_request, run_export
    from service.sync.target import make_client

    settings = Settings.from_env()
    fhir_settings = settings.fhir
    if args.fhir_base_url:
        fhir_settings = replace(fhir_settings, base_url=args.fhir_base_url)
    sessions = None
    since = args.since
    if args.job_name:
        from service.store import export_checkpoints, make_engine, make_session_factory, upgrade

        engine = make_engine(settings.database_url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        if since is None:
            # Incremental: start where the last completed run of this job name ended.
            with sessions.begin() as session:
                since = export_checkpoints.last_transaction_time(session, args.job_name)
            print(f"export: job {args.job_name}: since {since or 'the beginning'}", file=sys.stderr)
    try:
        request = export_request(
            {
                "since": since,
                "until": args.until,
                "patient": args.patient,
                "types": args.type,
                "format": args.format,
            }
        )
    except ExportRequestError as exc:
        raise SystemExit(f"diarybridge export: --{exc.field}: {exc}") from None
    out_dir = Path(args.out).resolve()

    def report(text: str) -> None:
        print(f"export: {text}", file=sys.stderr)

    with make_client(fhir_settings) as fhir:
        manifest = run_export(
            fhir,
            request,
            out_dir,
            url_for=lambda name: (out_dir / name).as_uri(),
            requires_access_token=False,
            report=report,
            use_bulk=False if args.search else None,
        )
    if sessions is not None:
        from service.store import export_checkpoints

        with sessions.begin() as session:
            export_checkpoints.record_run(session, args.job_name, request.to_json(), manifest)
    for item in manifest["output"] + manifest["error"]:
        print(f"{item['type']}: {item['count']} -> {item['url']}", file=sys.stderr)
    print(str(out_dir / "manifest.json"))
    return 0


def _import(args: argparse.Namespace) -> int:
    from service.imports import Importer, KindChoice, progress_for

    settings = Settings.from_env()
    runtime = _sync_runtime(settings)
    sessions = runtime.sessions
    worker = None
    if settings.fhir.base_url and not args.no_push:
        worker = runtime.worker()
    elif not args.no_push:
        print(
            "import: no DIARYBRIDGE_FHIR_BASE_URL: records are queued, not pushed", file=sys.stderr
        )
    report = open(args.report, "w", encoding="utf-8") if args.report else None  # noqa: SIM115
    problems = 0

    def on_failure(failure: dict[str, Any]) -> None:
        nonlocal problems
        problems += 1
        if report is not None:
            report.write(json.dumps(failure) + "\n")

    importer = Importer(
        sessions,
        args.app,
        kind=KindChoice(args.kind),
        worker=worker,
        batch_size=args.batch_size,
        on_failure=on_failure,
        progress=progress_for(sys.stderr),
    )
    try:
        for path in args.files:
            importer.import_path(path)
        summary = importer.finish()
    finally:
        if report is not None:
            report.close()
    print(summary.line())
    if problems:
        where = f"; see {args.report}" if args.report else "; --report FILE lists them"
        print(
            f"import: {problems} problem(s) in {summary.invalid + summary.not_delivered} "
            f"record(s){where}",
            file=sys.stderr,
        )
    # Not done while any record of the input is not on the server (failed or still queued).
    return 1 if summary.invalid or summary.not_delivered else 0


def _publish_terminology(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from service.sync.target import make_client
    from service.sync.terminology import publish_terminology

    fhir_settings = Settings.from_env().fhir
    if args.fhir_base_url:
        fhir_settings = replace(fhir_settings, base_url=args.fhir_base_url)
    if not fhir_settings.base_url:
        raise SystemExit("diarybridge publish-terminology: set DIARYBRIDGE_FHIR_BASE_URL")
    with make_client(fhir_settings) as client:
        for published in publish_terminology(client):
            print(
                f"{published.outcome} CodeSystem/{published.server_id} "
                f"{published.url}|{published.version}"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: serve, worker, convert, export, import and publish-terminology."""
    parser = argparse.ArgumentParser(prog="diarybridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API (gunicorn)")
    serve.add_argument("--host", help="bind address (default DIARYBRIDGE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default DIARYBRIDGE_PORT or 8080)")
    serve.add_argument(
        "--workers", type=int, help="gunicorn processes (default DIARYBRIDGE_WORKERS or cores, <=4)"
    )
    serve.add_argument(
        "--threads", type=int, help="threads per process (default DIARYBRIDGE_THREADS or 4)"
    )
    serve.set_defaults(func=_serve)

    work = sub.add_parser("worker", help="deliver queued entries to the FHIR server")
    work.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    work.add_argument(
        "--parent-pid", type=int, help="stop when this process (the one that started it) ends"
    )
    work.set_defaults(func=_worker)

    conv = sub.add_parser(
        "convert", help="diary entries / infusion records (JSON or NDJSON) -> FHIR"
    )
    conv.add_argument("files", nargs="+", help="input files; - for standard input")
    conv.add_argument("--format", choices=("bundle", "ndjson"), default="bundle")
    conv.add_argument("--bundle", choices=("collection", "transaction"), default="collection")
    conv.add_argument("--fhir-version", choices=("R4", "R5"), default="R4")
    conv.add_argument("--app", default="diarybridge-cli", help="app namespace for identifiers")
    conv.add_argument("-o", "--output", help="write here instead of standard output")
    conv.set_defaults(func=_convert)

    export = sub.add_parser(
        "export", help="bulk export from the FHIR server: NDJSON per type + manifest, or CSV"
    )
    export.add_argument("--since", help="resources updated at/after (ISO 8601 with timezone)")
    export.add_argument(
        "--job-name",
        help="incremental: remember this job's last transaction time in the database and, "
        "without --since, export only what changed since its last completed run",
    )
    export.add_argument("--until", help="resources updated before (ISO 8601 with timezone)")
    export.add_argument("--patient", help="only this patient (Patient/<id>)")
    export.add_argument(
        "--type",
        help="comma-separated: Observation,MedicationAdministration,AdverseEvent (default all)",
    )
    export.add_argument("--format", choices=("fhir", "records", "csv"), default="fhir")
    export.add_argument("--out", required=True, help="output folder (its export files replaced)")
    export.add_argument("--fhir-base-url", help="instead of DIARYBRIDGE_FHIR_BASE_URL")
    export.add_argument(
        "--search", action="store_true", help="use paged search even if $export is offered"
    )
    export.set_defaults(func=_export)

    imp = sub.add_parser(
        "import", help="bulk import records (JSON array, NDJSON or CSV) via the outbox, then push"
    )
    imp.add_argument("files", nargs="+", help="input files; - for standard input")
    imp.add_argument("--kind", choices=("diary", "infusion", "auto"), default="auto")
    imp.add_argument("--app", default="diarybridge-cli", help="app namespace for identifiers")
    imp.add_argument("--report", help="write one JSON line per problem (position, field, message)")
    imp.add_argument("--no-push", action="store_true", help="only queue in the outbox")
    imp.add_argument("--batch-size", type=int, default=500, help="records per outbox transaction")
    imp.set_defaults(func=_import)

    pub = sub.add_parser(
        "publish-terminology",
        help="write our local CodeSystems to the FHIR server (idempotent: unchanged ones are left)",
    )
    pub.add_argument("--fhir-base-url", help="instead of DIARYBRIDGE_FHIR_BASE_URL")
    pub.set_defaults(func=_publish_terminology)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `diarybridge` console script."""
    args = build_parser().parse_args(argv)
    canonical.configure(canonical_base_from_env())  # where our local CodeSystems live
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
