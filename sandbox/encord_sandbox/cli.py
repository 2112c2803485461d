"""The ``encord-sandbox`` command line: serve a sandbox, configure its integrations, misbehave on request."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

from encord_sandbox.chaos import ChaosConfig

DEFAULT_DATA_DIR = Path(".encord-sandbox")
#: The chaos settings the command line offers: those that declare an option.
_CHAOS_FIELDS = tuple(f for f in fields(ChaosConfig) if "flag" in f.metadata)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    from encord_sandbox.server import serve

    signal.signal(signal.SIGTERM, _interrupt)
    serve(Path(args.data_dir), args.host, args.port, args.latency_ms, job_workers=args.job_workers, chaos=_chaos(args))
    return 0


def _chaos(args: argparse.Namespace) -> ChaosConfig | None:
    """The chaos settings of ``serve``; None (no chaos) unless a chaos option is given."""
    given: dict[str, Any] = {f.name: getattr(args, f.name) for f in _CHAOS_FIELDS if hasattr(args, f.name)}
    if not given:
        return None
    settings: dict[str, Any] = {
        name: tuple(value) if isinstance(value, list) else value for name, value in given.items()
    }
    return ChaosConfig(**settings)


def chaos_arguments(config: ChaosConfig | None) -> list[str]:
    """The ``encord-sandbox serve`` options that turn on exactly ``config`` (none for None)."""
    if config is None:
        return []
    arguments = ["--chaos-seed", str(config.seed)]  # always: a seed is what turns chaos on
    for f in _CHAOS_FIELDS:
        value = getattr(config, f.name)
        if f.name == "seed" or value == f.default:
            continue
        if isinstance(value, bool):
            arguments.append(f.metadata["flag"])
        elif isinstance(value, tuple):
            arguments += [part for item in value for part in (f.metadata["flag"], item)] or [f.metadata["empty_flag"]]
        else:
            arguments += [f.metadata["flag"], str(value)]
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
    """Chaos mode (see encord_sandbox.chaos), one option per :class:`ChaosConfig` field as the field declares it;
    an option not given keeps the field's default. Rates are shares of requests, or of units, in 0..1."""
    chaos = parser.add_argument_group("chaos mode", "misbehave like a busy service, reproducibly")
    for f in _CHAOS_FIELDS:
        flag, help = f.metadata["flag"], f.metadata["help"]
        common: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS}
        if isinstance(f.default, bool):  # the option turns a default-true setting off
            chaos.add_argument(flag, action="store_false", help=help, **common)
        elif isinstance(f.default, tuple):
            group = chaos.add_mutually_exclusive_group() if "empty_flag" in f.metadata else chaos
            group.add_argument(flag, action="append", help=help, **common)
            if "empty_flag" in f.metadata:
                empty_help = f.metadata["empty_help"]
                group.add_argument(f.metadata["empty_flag"], action="store_const", const=(), help=empty_help, **common)
        else:
            kind = f.metadata.get("type", type(f.default))
            shown = "" if f.default in (0, None) else f" (default: {f.default:g})"
            chaos.add_argument(flag, type=kind, help=help + shown, **common)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
