"""The ``prefect-encord`` command line."""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prefect_encord.runtime.extras import MissingExtraError
from prefect_encord.runtime.interrupts import Stopped, stop_exit_code, stop_on_signals

if TYPE_CHECKING:
    from prefect_encord.blocks.credentials import EncordCredentials


def _ingest(args: argparse.Namespace) -> int:
    from prefect_encord.cli import ingest_command as main_command

    with stop_on_signals():  # only ingest checks the stop request; other commands keep Ctrl-C's usual meaning
        return _off_the_main_thread(lambda: main_command.run(args))


def _off_the_main_thread(command: Callable[[], int]) -> int:
    """Run ``command`` on a thread of its own while the main thread waits, keeping the signal handlers.

    Prefect's flow engine replaces SIGTERM's handler with its own (which ends the run at once, as crashed) when,
    and only when, the flow runs on the main thread: there, a SIGTERM could not stop new work and settle the
    started jobs as a Ctrl-C does. The thread is a daemon, so a second Ctrl-C ends the process at once.
    """
    outcome: list[int | BaseException] = []
    context = contextvars.copy_context()  # the Prefect settings this command set

    def run() -> None:
        try:
            outcome.append(context.run(command))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            outcome.append(exc)

    thread = threading.Thread(target=run, name="prefect-encord-command", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.2)  # in short waits, so that the main thread takes its signals
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return result


def _rollback(args: argparse.Namespace) -> int:
    from prefect_encord.events.reporting import TooManyFailures
    from prefect_encord.flows.rollback import RollbackResult, rollback

    with main_command_credentials(args) as credentials:
        # Called directly, a flow that returns a State returns that state's result (a failed one raises).
        try:
            result = cast(RollbackResult, rollback(args.run_id, credentials=credentials, force=args.force))
        except TooManyFailures as failed:
            result = cast(RollbackResult, failed.result)
    print(f"deleted {len(result.deleted)}, already gone {len(result.already_deleted)}, failed {len(result.failed)}")
    for item, error in result.failed.items():
        print(f"  {item}: {error}")
    print(f"folders deleted {len(result.folders_deleted)}, dataset attachments undone {len(result.detached)}, "
          f"schema keys removed {len(result.schema_keys_removed)}")  # fmt: skip
    for thing, why in {**result.folders_kept, **result.kept}.items():
        print(f"  kept {thing}: {why}")
    return 0 if not result.failed else 1


def _export_labels(args: argparse.Namespace) -> int:
    from prefect_encord.blocks import load_cloud_block
    from prefect_encord.flows.export_labels import export_labels
    from prefect_encord.flows.parameters import CloudDestination, Destination, LocalDestination

    destination: Destination = (
        CloudDestination(block=load_cloud_block(args.destination), prefix=args.prefix)
        if args.cloud
        else LocalDestination(directory=str(Path(args.destination).resolve()), prefix=args.prefix)
    )
    with main_command_credentials(args) as credentials:
        result = export_labels(
            args.project, destination=destination, coco=args.coco, incremental=not args.full,
            keep_removed=args.keep_removed, credentials=credentials,
        )  # fmt: skip
    print(f"{len(result.exported)} label rows exported to {result.index} ({result.reason})")
    if result.removed:
        what = "kept" if result.kept_removed else "their files deleted"
        print(f"{len(result.removed)} rows of the previous export are no longer in Encord's selection: {what}")
    return 0


def _relay(args: argparse.Namespace) -> int:
    from prefect_encord.events.relay import serve as serve_relay

    serve_relay(args.host, args.port, args.within)  # the relay's token: from the environment, never argv
    return 0


def _check_notifications(args: argparse.Namespace) -> int:
    from prefect_encord.blocks import load_cloud_block
    from prefect_encord.cli.notification_check import check_notifications
    from prefect_encord.events.names import BUCKET_PROBE_EVENT

    probe = check_notifications(load_cloud_block(args.bucket_block), args.timeout)
    if probe.arrived:
        print(f"the notification of {probe.url} reached Prefect through the relay in {probe.seconds:.1f} s: "
              "the bucket is wired (new objects will start ingest-on-upload the same way)")  # fmt: skip
        return 0
    print(
        f"no notification of {probe.url} reached Prefect within {args.timeout:g} s (no {BUCKET_PROBE_EVENT} event "
        "for it). Check, in order: the bucket sends object-created notifications (S3 to SNS or EventBridge, GCS "
        "to Pub/Sub, Azure to Event Grid) to the relay's URL ending /buckets/notifications?token=..., with the "
        "relay's PREFECT_ENCORD_RELAY_TOKEN; its prefix filter, if any, covers this key; an SNS subscription is "
        "confirmed; the relay's /healthz counts no refused messages; the relay's PREFECT_API_URL is this one's",
        file=sys.stderr,
    )
    return 1


@contextlib.contextmanager
def main_command_credentials(args: argparse.Namespace) -> Iterator[EncordCredentials]:
    from prefect_encord.cli import ingest_command as main_command

    sandbox_dir = main_command.sandbox_directory(args.home)
    with main_command.resolve_credentials(args.credentials_block, sandbox_dir) as (credentials, _):
        yield credentials


def build_parser() -> argparse.ArgumentParser:
    from prefect_encord.cli import ingest_command as main_command

    parser = argparse.ArgumentParser(prog="prefect-encord", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error, not only its message")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest",
        help="ingest a directory or bucket into Encord (no arguments: the example, into a local sandbox)",
        parents=[common],
    )
    main_command.add_arguments(ingest)
    ingest.set_defaults(run=_ingest, usage_problems=main_command.usage_problems)

    undo = commands.add_parser("rollback", help="delete what one ingest run created (its receipt)", parents=[common])
    undo.add_argument("run_id", help="the ingest run's id (printed at the end of `prefect-encord ingest`)")
    undo.add_argument("--force", action="store_true", help="delete items even when they carry labels (lost too)")
    main_command.add_credentials_arguments(undo)
    undo.set_defaults(run=_rollback)

    export = commands.add_parser("export-labels", help="export a project's labels, incrementally", parents=[common])
    export.add_argument("project", help="project hash")
    export.add_argument("--destination", default="exports", help="local directory, or a cloud block with --cloud")
    export.add_argument("--cloud", action="store_true", help="--destination names a cloud integration block")
    export.add_argument("--prefix", default="", help="folder within the destination")
    export.add_argument("--coco", action="store_true", help="also keep a COCO file")
    export.add_argument("--full", action="store_true", help="re-export everything, not only what changed")
    export.add_argument(
        "--keep-removed", action="store_true", help="keep the files of rows deleted in Encord since the last export"
    )
    main_command.add_credentials_arguments(export)
    export.set_defaults(run=_export_labels)

    relay = commands.add_parser(
        "webhook-relay",
        help="turn Encord workflow webhooks and bucket notifications into Prefect events",
        parents=[common],
    )
    relay.add_argument("--host", default="127.0.0.1")
    relay.add_argument("--port", type=int, default=8787)
    relay.add_argument("--within", type=float, default=30.0, help="seconds a notified key waits for others (30)")
    relay.set_defaults(run=_relay)

    check = commands.add_parser(
        "check-notifications",
        help="test a bucket's wiring to the relay: a probe object in, its Prefect event back (nothing ingested)",
        parents=[common],
    )
    check.add_argument("--bucket-block", required=True, help="saved cloud block of the bucket, e.g. "
                       "encord-s3-integration/raw")  # fmt: skip
    check.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the notification (120)")
    check.set_defaults(run=_check_notifications)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``prefect-encord``: the exit code of the command, 130 for a Ctrl-C the run itself did not take."""
    began = time.time()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        from prefect_encord.runtime.interrupts import stop_requested

        if stop_requested():  # the second Ctrl-C: stopped at once; every job it started is on record
            print(f"prefect-encord: stopped at once; {_way_back(began)}", file=sys.stderr)
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[?25h")  # show the cursor the progress bar hid
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # not waiting for the run's threads (seconds, and a log flood): the books are written ahead
        else:  # while Prefect was imported or a server started: before the run, which had written nothing
            print("prefect-encord: interrupted before the run began; nothing was written", file=sys.stderr)
        return 130


def _way_back(began: float) -> str:
    """What undoes the run this command started (its receipt is the newest unfinished one since ``began``)."""
    from prefect_encord.state.run_ledger import receipts

    cut_off = [r for r in receipts() if r.finished_at is None and r.started_at.timestamp() >= began]
    if not cut_off:
        return "the run had not begun writing"
    run_id = max(cut_off, key=lambda receipt: receipt.started_at).run_id
    return (f"the jobs the run started are on record, and `prefect-encord rollback {run_id}` finishes them and "
            "undoes the run")  # fmt: skip


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)  # --help and refused arguments end here, before Prefect is imported
    problems = args.usage_problems(args) if hasattr(args, "usage_problems") else []
    if problems:  # options that would be ignored: one line each
        for problem in problems:
            print(f"prefect-encord {args.command}: {problem}", file=sys.stderr)
        return 2
    # Prefect warns on import when it cannot create PREFECT_HOME; the line below says so, and what to do.
    warnings.filterwarnings("ignore", message="Failed to create the Prefect home directory", category=UserWarning)
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        get_current_settings,
        temporary_settings,
    )

    from prefect_encord.runtime.temporary_server import guard_temporary_server

    unreachable = _unreachable_api()
    if unreachable:
        print(f"prefect-encord {args.command}: {unreachable}", file=sys.stderr)
        return 1
    # Prefect's temporary server keeps its database in PREFECT_HOME and cannot create a missing directory, and
    # waits out its whole start-up timeout when it cannot write there: both are found here, in one line.
    unwritable = _unwritable(Path(get_current_settings().home).expanduser())
    if unwritable:
        print(f"prefect-encord {args.command}: {unwritable}", file=sys.stderr)
        return 1
    # With no Prefect server configured, flows start a temporary one; on a busy 2-core machine its first
    # start (migrations included) can take longer than Prefect's default 20 s wait.
    timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), 180)
    # Telemetry cannot leave an offline machine; trying only fills the terminal with errors.
    updates = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    if not args.debug:
        _hide_tracebacks()
    with temporary_settings(updates=updates):
        if args.command != "ingest":  # ingest guards it once its inputs are checked, so a refusal comes at once
            guard_temporary_server()
        try:
            return int(args.run(args))
        except Stopped as stopped:
            print(f"prefect-encord {args.command}: {stopped}", file=sys.stderr)
            return stop_exit_code()  # as a shell reports a command ended by the signal: 130 (SIGINT), 143 (SIGTERM)
        except _expected_errors() as error:
            if args.debug:
                raise
            print(f"prefect-encord {args.command}: {_first_lines(str(error))}", file=sys.stderr)
            if isinstance(error, MissingExtraError):  # the message is the fix: install the extra
                return 2
            print("(run again with --debug for the traceback)", file=sys.stderr)
            return 1


def _unwritable(home: Path) -> str | None:
    """Why ``PREFECT_HOME`` cannot hold Prefect's and this package's files, in one line, or None."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        return f"PREFECT_HOME {home} cannot be written ({exc.strerror or exc}): point it at a writable directory"
    return None


def _unreachable_api() -> str | None:
    """Why the configured Prefect API cannot be used, in one line, or None (none configured counts as fine: a
    temporary server starts). Any HTTP answer will do; only a connection that fails is refused, before Prefect's
    client retries it and ends in a traceback."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.HTTPError as exc:
        return f"the Prefect API at {url} (PREFECT_API_URL) does not answer: {exc or type(exc).__name__}"
    return None


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message says what to fix (a value, a path, a refused key): shown as their message alone.

    Anything else is a bug of ours and keeps its traceback.
    """
    from encord.exceptions import EncordException
    from prefect.exceptions import ParameterTypeError

    return MissingExtraError, ValueError, TypeError, OSError, EncordException, ParameterTypeError


def _first_lines(message: str, lines: int = 6) -> str:
    kept = message.strip().splitlines()
    return "\n".join(kept[:lines] + ([f"... ({len(kept) - lines} more lines)"] if len(kept) > lines else []))


def _hide_tracebacks() -> None:
    """Prefect logs a failed run's exception with its whole traceback; keep the message and drop the rest.

    Done where records are made rather than with a handler's filter, because Prefect sets its handlers up
    when a run starts, after this.
    """
    make = logging.getLogRecordFactory()

    def without_traceback(name: str, level: int, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(name, level, *args, **kwargs)
        if name.startswith("prefect"):
            record.exc_info, record.exc_text = None, None
        return record

    logging.setLogRecordFactory(without_traceback)


if __name__ == "__main__":
    sys.exit(main())
