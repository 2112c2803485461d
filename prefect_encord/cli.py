"""The ``prefect-encord`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect_encord.sandbox.chaos import ChaosConfig

DEFAULT_SANDBOX_DIR = Path(".prefect-encord") / "sandbox"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    from prefect_encord.sandbox.server import serve

    signal.signal(signal.SIGTERM, _interrupt)
    serve(Path(args.data_dir), args.host, args.port, args.latency_ms, job_workers=args.job_workers, chaos=_chaos(args))
    return 0


def _chaos(args: argparse.Namespace) -> ChaosConfig | None:
    """The chaos settings of ``sandbox serve``; None (no chaos) unless a seed or a rate is given."""
    from prefect_encord.sandbox.chaos import JOB_START_ROUTE, ChaosConfig

    rates = ("error", "throttle", "drop", "slow", "unit_failure", "poll_timeout")
    if args.chaos_seed is None and not any(getattr(args, f"chaos_{rate}_rate") for rate in rates):
        return None
    return ChaosConfig(
        seed=args.chaos_seed or 0,
        **{f"{rate}_rate": getattr(args, f"chaos_{rate}_rate") for rate in rates},
        retry_after_seconds=args.chaos_retry_after,
        slow_seconds=args.chaos_slow_seconds,
        routes=tuple(args.chaos_route),
        lost_answer_routes=()
        if args.chaos_no_lost_answers
        else tuple(args.chaos_lost_answer_route or (JOB_START_ROUTE,)),
        include_blobs=not args.chaos_spare_blobs,
        max_faults=args.chaos_max_faults,
    )


def _add_integration(args: argparse.Namespace) -> int:
    """Configure an integration, as an Encord admin would in the web app; prints its UUID."""
    from prefect_encord.sandbox.server import Sandbox

    settings = {k: v for k, v in json.loads(args.settings).items()}
    sandbox = Sandbox(Path(args.data_dir))
    try:
        print(sandbox.add_integration(args.title, args.kind, **settings))
    finally:
        sandbox.backend.close()
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from prefect_encord import main_command

    return main_command.run(args)


def _rollback(args: argparse.Namespace) -> int:
    from prefect_encord.flows.rollback import rollback

    with main_command_credentials(args) as block:
        result = rollback(args.run_id, credentials_block=block)
    print(f"deleted {len(result.deleted)}, already gone {len(result.already_deleted)}, failed {len(result.failed)}")
    for item, error in result.failed.items():
        print(f"  {item}: {error}")
    return 0 if not result.failed else 1


def _export_labels(args: argparse.Namespace) -> int:
    from prefect_encord.flows.export_labels import ExportDestination, export_labels

    destination = ExportDestination(
        kind="cloud" if args.cloud else "local", location=args.destination, prefix=args.prefix
    )
    with main_command_credentials(args) as block:
        result = export_labels(
            args.project, destination=destination, coco=args.coco, incremental=not args.full, credentials_block=block
        )
    print(f"{len(result.exported)} label rows exported to {result.index} ({result.reason})")
    return 0


def _relay(args: argparse.Namespace) -> int:
    from prefect_encord.webhook_relay import serve as serve_relay

    serve_relay(args.host, args.port)
    return 0


@contextlib.contextmanager
def main_command_credentials(args: argparse.Namespace) -> Iterator[str]:
    from prefect_encord import main_command

    with main_command.resolve_credentials(args.credentials_block, Path(args.home).resolve()) as (block, _):
        yield block


def build_parser() -> argparse.ArgumentParser:
    from prefect_encord import main_command

    parser = argparse.ArgumentParser(prog="prefect-encord", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest", help="ingest a directory or bucket into Encord (no arguments: the example, into a local sandbox)"
    )
    main_command.add_arguments(ingest)
    ingest.set_defaults(run=_ingest)

    undo = commands.add_parser("rollback", help="delete what one ingest run created, from its receipt")
    undo.add_argument("run_id", help="the ingest run's id (printed at the end of `prefect-encord ingest`)")
    _add_credentials_arguments(undo)
    undo.set_defaults(run=_rollback)

    export = commands.add_parser("export-labels", help="export a project's labels, incrementally")
    export.add_argument("project", help="project hash")
    export.add_argument("--destination", default="exports", help="local directory, or a cloud block with --cloud")
    export.add_argument("--cloud", action="store_true", help="--destination names a cloud integration block")
    export.add_argument("--prefix", default="", help="folder within the destination")
    export.add_argument("--coco", action="store_true", help="also keep a COCO file")
    export.add_argument("--full", action="store_true", help="re-export everything, not only what changed")
    _add_credentials_arguments(export)
    export.set_defaults(run=_export_labels)

    relay = commands.add_parser("webhook-relay", help="turn Encord workflow webhooks into Prefect events")
    relay.add_argument("--host", default="127.0.0.1")
    relay.add_argument("--port", type=int, default=8787)
    relay.set_defaults(run=_relay)
    sandbox = commands.add_parser("sandbox", help="the offline Encord sandbox")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)

    serve = sandbox_commands.add_parser("serve", help="run the sandbox until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    serve.add_argument("--data-dir", default=str(DEFAULT_SANDBOX_DIR), help="state directory")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="delay every answer, to mimic a network")
    serve.add_argument("--job-workers", type=int, default=4, help="units registered in parallel (default: 4)")
    _add_chaos_arguments(serve)
    serve.set_defaults(run=_serve)

    integration = sandbox_commands.add_parser("add-integration", help="create a cloud integration")
    integration.add_argument("--data-dir", default=str(DEFAULT_SANDBOX_DIR), help="state directory")
    integration.add_argument("--title", required=True, help="the integration's title")
    integration.add_argument("--kind", required=True, choices=["local", "s3", "gcs", "azure"])
    integration.add_argument(
        "--settings",
        default="{}",
        help='JSON settings, e.g. \'{"root": "/data"}\' or \'{"endpoint_url": "http://127.0.0.1:9000"}\'',
    )
    integration.set_defaults(run=_add_integration)
    return parser


def _add_chaos_arguments(parser: argparse.ArgumentParser) -> None:
    """Chaos mode (see prefect_encord.sandbox.chaos): rates are shares of requests, or of units, in 0..1."""
    chaos = parser.add_argument_group("chaos mode", "misbehave like a busy service, reproducibly")
    chaos.add_argument("--chaos-seed", type=int, help="seed of the fault generators (turns chaos on)")
    chaos.add_argument("--chaos-error-rate", type=float, default=0.0, help="answer 503 before the handler")
    chaos.add_argument("--chaos-throttle-rate", type=float, default=0.0, help="answer 429 with Retry-After")
    chaos.add_argument("--chaos-retry-after", type=int, default=1, help="Retry-After seconds of a 429 (default: 1)")
    chaos.add_argument(
        "--chaos-drop-rate", type=float, default=0.0, help="close without an answer (see --chaos-lost-answer-route)"
    )
    chaos.add_argument("--chaos-slow-rate", type=float, default=0.0, help="answer after --chaos-slow-seconds")
    chaos.add_argument("--chaos-slow-seconds", type=float, default=2.0, help="delay of a slow answer (default: 2)")
    chaos.add_argument("--chaos-unit-failure-rate", type=float, default=0.0, help="units failing once, transiently")
    chaos.add_argument("--chaos-poll-timeout-rate", type=float, default=0.0, help="long polls answering at once")
    chaos.add_argument(
        "--chaos-route", action="append", default=[], help="regex on 'METHOD /path' of covered requests (repeatable)"
    )
    chaos.add_argument("--chaos-spare-blobs", action="store_true", help="never touch signed-URL transfers")
    lost = chaos.add_mutually_exclusive_group()
    lost.add_argument(
        "--chaos-lost-answer-route",
        action="append",
        default=[],
        help="regex on 'METHOD /path' whose drops come after the handler ran (repeatable; default: job starts)",
    )
    lost.add_argument("--chaos-no-lost-answers", action="store_true", help="every drop comes before the handler")
    chaos.add_argument("--chaos-max-faults", type=int, help="stop after this many faults")


def _add_credentials_arguments(parser: argparse.ArgumentParser) -> None:
    from prefect_encord import main_command

    parser.add_argument("--credentials-block", help="a saved EncordCredentials block (default: env, else sandbox)")
    parser.add_argument("--home", default=str(main_command.DEFAULT_HOME), help="where the embedded sandbox lives")


def main(argv: Sequence[str] | None = None) -> int:
    from prefect.settings import (
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        get_current_settings,
        temporary_settings,
    )

    args = build_parser().parse_args(argv)
    # Prefect's temporary server keeps its database in PREFECT_HOME and cannot create a missing directory.
    Path(get_current_settings().home).expanduser().mkdir(parents=True, exist_ok=True)
    # With no Prefect server configured, flows start a temporary one; on a busy 2-core machine its first
    # start (migrations included) can take longer than Prefect's default 20 s wait.
    timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), 180)
    # Telemetry cannot leave an offline machine; trying only fills the terminal with errors.
    updates = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    with temporary_settings(updates=updates):
        return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
