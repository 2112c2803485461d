"""The ``encord-sandbox`` command line: serve a sandbox, configure its integrations, misbehave on request."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from encord_sandbox.chaos import JOB_START_ROUTE, ChaosConfig

DEFAULT_DATA_DIR = Path(".encord-sandbox")
_RATES = ("error", "throttle", "drop", "slow", "unit_failure", "poll_timeout")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    from encord_sandbox.server import serve

    signal.signal(signal.SIGTERM, _interrupt)
    serve(Path(args.data_dir), args.host, args.port, args.latency_ms, job_workers=args.job_workers, chaos=_chaos(args))
    return 0


def _chaos(args: argparse.Namespace) -> ChaosConfig | None:
    """The chaos settings of ``serve``; None (no chaos) unless a seed or a rate is given."""
    if args.chaos_seed is None and not any(getattr(args, f"chaos_{rate}_rate") for rate in _RATES):
        return None
    return ChaosConfig(
        seed=args.chaos_seed or 0,
        **{f"{rate}_rate": getattr(args, f"chaos_{rate}_rate") for rate in _RATES},
        retry_after_seconds=args.chaos_retry_after,
        slow_seconds=args.chaos_slow_seconds,
        routes=tuple(args.chaos_route),
        lost_answer_routes=()
        if args.chaos_no_lost_answers
        else tuple(args.chaos_lost_answer_route or (JOB_START_ROUTE,)),
        include_blobs=not args.chaos_spare_blobs,
        max_faults=args.chaos_max_faults,
    )


def chaos_arguments(config: ChaosConfig | None) -> list[str]:
    """The ``encord-sandbox serve`` options that turn on exactly ``config`` (none for None)."""
    if config is None:
        return []
    arguments = ["--chaos-seed", str(config.seed), "--chaos-retry-after", str(config.retry_after_seconds)]
    arguments += ["--chaos-slow-seconds", str(config.slow_seconds)]
    for rate in _RATES:
        arguments += [f"--chaos-{rate.replace('_', '-')}-rate", str(getattr(config, f"{rate}_rate"))]
    for route in config.routes:
        arguments += ["--chaos-route", route]
    for route in config.lost_answer_routes:
        arguments += ["--chaos-lost-answer-route", route]
    arguments += [] if config.lost_answer_routes else ["--chaos-no-lost-answers"]
    arguments += [] if config.include_blobs else ["--chaos-spare-blobs"]
    arguments += [] if config.max_faults is None else ["--chaos-max-faults", str(config.max_faults)]
    return arguments


def _add_integration(args: argparse.Namespace) -> int:
    """Configure an integration, as an Encord admin would in the web app; prints its UUID."""
    from encord_sandbox.db import STORE_FILE_NAME
    from encord_sandbox.server import Sandbox

    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as error:
        raise SystemExit(f"encord-sandbox: --settings is not JSON ({error}): {args.settings!r}") from None
    if not isinstance(settings, dict):
        raise SystemExit(f"encord-sandbox: --settings must be a JSON object, not {args.settings!r}")
    data_dir = Path(args.data_dir).expanduser()
    if not (data_dir / STORE_FILE_NAME).is_file():  # a mistyped path must not quietly start a second sandbox
        raise SystemExit(
            f"encord-sandbox: no sandbox in --data-dir {str(data_dir)!r}; start one there first "
            f"(encord-sandbox serve --data-dir {str(data_dir)!r}) or give the directory of an existing one"
        )
    sandbox = Sandbox(data_dir)
    try:
        print(sandbox.add_integration(args.title, args.kind, **settings))
    except (TypeError, ValueError) as error:  # a setting unknown to the kind, or of the wrong type
        raise SystemExit(f"encord-sandbox: --settings {args.settings!r}: {error}") from None
    finally:
        sandbox.backend.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="encord-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the sandbox until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    serve.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="state directory")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="delay every answer, to mimic a network")
    serve.add_argument("--job-workers", type=int, default=4, help="units registered in parallel (default: 4)")
    _add_chaos_arguments(serve)
    serve.set_defaults(run=_serve)

    integration = commands.add_parser("add-integration", help="create a cloud integration")
    integration.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="state directory")
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
    """Chaos mode (see encord_sandbox.chaos): rates are shares of requests, or of units, in 0..1."""
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
