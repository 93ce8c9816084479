"""`vinbot`: the one console command. It parses arguments and calls each room's entry function."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.settings import Settings, get_settings

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vinbot", description="A conversational vehicle assistant.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decode = commands.add_parser(
        "decode",
        help="decode VINs",
        description="Decode VINs. With no VIN and no --file: an interactive prompt on a terminal, "
        "or one VIN per line from standard input. Exit status: 0 when every VIN decoded, "
        "1 when any was invalid (all are still reported), 2 on usage errors.",
    )
    decode.add_argument("vins", nargs="*", metavar="VIN", help="VINs to decode")
    decode.add_argument("--file", type=Path, help="a file with one VIN per line (optionally VIN,YEAR)")
    decode.add_argument("--year", type=int, help="model-year hint for every VIN")
    decode.add_argument("--provider", choices=["offline", "nhtsa", "autodev"], help="decoder to use")
    decode.add_argument("--json", action="store_true", help="print a JSON array, one object per input")
    decode.add_argument("--interactive", action="store_true", help="prompt for VINs until 'quit'")

    ask = commands.add_parser(
        "ask",
        help="ask the assistant a question",
        description="Print the answer to QUESTION. With no QUESTION: one question per line from standard "
        "input, one JSON answer per line, in order (each its own conversation unless --conversation).",
    )
    ask.add_argument("question", nargs="?", help="the question (quote it)")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.add_argument("--conversation", help="continue this conversation id (cli:...)")
    ask.add_argument("--language", choices=["en", "es", "fr", "de"], help="answer language")

    chat = commands.add_parser("chat", help="talk with the assistant in the terminal")
    chat.add_argument("--language", choices=["en", "es", "fr", "de"], help="answer language")

    api = commands.add_parser(
        "api",
        help="serve the HTTP API and the web chat page",
        description="Serve the HTTP API and the web chat page with uvicorn (uvloop, httptools). "
        "Worker processes: --workers, else VINBOT_API_WORKERS, else one per CPU core.",
    )
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, help="worker processes (default: one per CPU core)")

    evaluate = commands.add_parser(
        "eval", help="run an evaluation (agent by default, vin-accuracy, specs, export-feedback)"
    )
    evaluate.add_argument("suite", nargs="?", default="agent", choices=EVAL_SUITES)
    evaluate.add_argument("options", nargs=argparse.REMAINDER, help="options passed to the suite")

    worker = commands.add_parser(
        "worker",
        help="run the Celery worker of bulk jobs",
        description="Run the bulk-job worker (Celery, prefork pool) on the configured or embedded "
        "PostgreSQL and Redis. Concurrency: --concurrency, else VINBOT_BULK__WORKER_CONCURRENCY, "
        "else one process per CPU core. Task events are on for Flower.",
    )
    worker.add_argument("--concurrency", type=int, help="worker processes")

    jobs = commands.add_parser("jobs", help="submit bulk decode jobs and read their results")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    submit = job_commands.add_parser(
        "submit",
        help="start a job from a CSV or text file",
        description="Start a job; progress goes to standard error, the job id is the last line of "
        "standard output.",
    )
    submit.add_argument(
        "file", type=Path, help="one VIN per line (VIN,YEAR allowed), or a CSV with a vin column"
    )
    submit.add_argument("--wait", action="store_true", help="show a progress bar until the job finishes")
    status = job_commands.add_parser("status", help="print a job's status and progress as JSON")
    status.add_argument("job_id", metavar="ID")
    results = job_commands.add_parser("results", help="print a job's results, one row per input line")
    results.add_argument("job_id", metavar="ID")
    results.add_argument("--format", choices=["csv", "json"], default="json")
    cancel = job_commands.add_parser("cancel", help="cancel a job")
    cancel.add_argument("job_id", metavar="ID")

    commands.add_parser(
        "bot",
        help="run the Telegram bot (long polling)",
        description="Run the Telegram bot with long polling (needs TELEGRAM_BOT_TOKEN; "
        "TELEGRAM_API_BASE_URL points it at a self-hosted Bot API server). In webhook mode "
        "(VINBOT_TELEGRAM__MODE=webhook) `vinbot api` serves /telegram/webhook instead, in each "
        "of its worker processes: the way to use more than one core.",
    )

    ingest = commands.add_parser(
        "ingest",
        help="load vehicle knowledge (EPA, EPA test cars, NHTSA recalls)",
        description="Load a dataset into the vehicle knowledge base: parse, embed new and changed "
        "records, upsert by record id. Re-runs change nothing; an interrupted run resumes. Without "
        "--source or --data-dir the publisher's files are downloaded.",
    )
    ingest.add_argument(
        "dataset",
        metavar="SOURCE",
        choices=["epa", "epa-test-cars", "recalls", "all"],
        help="epa, epa-test-cars, recalls, or all (with --data-dir)",
    )
    ingest.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="a file (.csv, .csv.gz, .zip, .xlsx) or URL; repeat for several files",
    )
    ingest.add_argument("--data-dir", type=Path, help="a folder holding the shared data files")
    ingest.add_argument("--batch-size", type=int, default=1000, help="documents per committed batch")

    migrate = commands.add_parser("migrate", help="apply database migrations (alembic upgrade)")
    migrate.add_argument("revision", nargs="?", default="head")
    return parser


EVAL_SUITES = ("agent", "vin-accuracy", "export-feedback", "specs")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `vinbot` command and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"] and argv[1:2] not in (["-h"], ["--help"]):
        # The suites parse their own options; argparse would reject them here.
        suite = argv[1] if argv[1:2] and argv[1] in EVAL_SUITES else "agent"
        rest = argv[2:] if argv[1:2] == [suite] else argv[1:]
        argv = ["eval", suite, "--", *rest]
    args = _parser().parse_args(argv)
    settings = get_settings()
    configure_process(settings, args.verbose)
    if args.command == "decode":
        from vinbot.decode_cmd import DecodeOptions, run_decode

        options = DecodeOptions(
            vins=args.vins,
            file=args.file,
            year=args.year,
            provider=args.provider,
            as_json=args.json,
            interactive=args.interactive,
        )
        return asyncio.run(run_decode(settings, options))
    if args.command == "ask":
        from vinbot.ask_cmd import AskOptions, run_ask

        options_ask = AskOptions(
            question=args.question, as_json=args.json, conversation=args.conversation, language=args.language
        )
        return asyncio.run(run_ask(settings, options_ask))
    if args.command == "chat":
        from vinbot.ask_cmd import run_chat

        return asyncio.run(run_chat(settings, language=args.language))
    if args.command == "api":
        from vinbot.api_cmd import ApiOptions, run_api

        options_api = ApiOptions(host=args.host, port=args.port, workers=args.workers, verbose=args.verbose)
        return run_api(settings, options_api)
    if args.command == "bot":
        from bot.app import serve as serve_bot

        with contextlib.suppress(KeyboardInterrupt):
            return serve_bot(settings)
        return EXIT_OK
    if args.command == "eval":
        suite_args = [o for o in args.options if o != "--"]
        if args.suite == "vin-accuracy":
            from evals import vin_accuracy

            return vin_accuracy.main(suite_args)
        if args.suite == "specs":
            from evals import specs_run

            return specs_run.main(suite_args, settings=settings)
        if args.suite == "export-feedback":
            from evals import feedback

            return feedback.main(suite_args, settings=settings)
        from evals import run as agent_evals

        return agent_evals.main(suite_args, settings=settings)
    if args.command == "worker":
        from tools.worker import serve as serve_worker

        with contextlib.suppress(KeyboardInterrupt):
            serve_worker(settings, concurrency=args.concurrency)
        return EXIT_OK
    if args.command == "jobs":
        from vinbot.jobs_cmd import JobsOptions, run_jobs

        options_jobs = JobsOptions(
            action=args.jobs_command,
            file=getattr(args, "file", None),
            job_id=getattr(args, "job_id", None),
            wait=getattr(args, "wait", False),
            format=getattr(args, "format", "json"),
        )
        return asyncio.run(run_jobs(settings, options_jobs))
    if args.command == "ingest":
        from vinbot.ingest_cmd import IngestOptions, run_ingest

        options_ingest = IngestOptions(
            dataset=args.dataset, sources=args.source, data_dir=args.data_dir, batch_size=args.batch_size
        )
        return asyncio.run(run_ingest(settings, options_ingest))
    if args.command == "migrate":
        return _migrate(settings, args.revision)
    return EXIT_USAGE


def configure_process(settings: Settings, verbose: int) -> None:
    """Configure logging, Sentry and the garbage collector of this process (`vinbot api` workers too)."""
    from tools.observability import configure_logging, init_sentry
    from tools.runtime import tune_gc

    tune_gc()

    level = {0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG") if settings.env != "prod" else settings.log_level
    configure_logging(level=level, fmt=settings.log_format, env=settings.env)
    init_sentry(settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else None, env=settings.env)


def _migrate(settings: Settings, revision: str) -> int:
    from tools.embedded import EmbeddedPostgres
    from tools.storage import migrate

    if settings.database_url:
        migrate.upgrade(settings.database_url, revision)
        return EXIT_OK
    server = EmbeddedPostgres(settings.pg_dir)
    try:
        migrate.upgrade(server.start(), revision)
    finally:
        server.stop()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
