"""``prefect-encord ingest``: the main command — run the ingest flow with a progress bar and a summary.

Where it ingests is decided once, in :func:`resolve_credentials`: a named ``EncordCredentials`` block
if given; else the SDK's own environment variables (``ENCORD_SSH_KEY_FILE`` / ``ENCORD_SSH_KEY``, with
``ENCORD_DOMAIN``); else an **embedded sandbox** started in this process under a local data directory,
so a fresh machine with no account ingests the bundled example and shows where to look.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the rest is imported where it is used: --help and refused arguments need none of it
    from prefect.client.schemas.objects import State

    from prefect_encord.blocks.credentials import EncordCredentials
    from prefect_encord.flows.ingest_summary import IngestSummary

#: Where the bundled example is written when no --home is given: beside the project, for a person to open, and
#: where deployments/prefect.yaml's ingest-directory deployment finds it.
EXAMPLE_HOME = Path(".prefect-encord")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", help="directory to ingest (default: the bundled example data)")
    parser.add_argument("--bucket-block", help="a saved cloud integration block, e.g. encord-s3-integration/raw")
    parser.add_argument("--include", action="append", default=[], help="glob of keys to register (repeatable)")
    parser.add_argument(
        "--on-vanished",
        choices=["report", "archive", "delete"],
        help="items of objects deleted from the bucket (default: report)",
    )
    parser.add_argument(
        "--on-changed",
        choices=["report", "replace"],
        help="items of objects overwritten in the bucket (default: report)",
    )
    parser.add_argument(
        "--max-deletions", type=_count, help="with --on-vanished archive/delete: at most this many (100)"
    )
    parser.add_argument(
        "--refresh-inventory", action="store_true", default=None, help="send every object again (Encord skips dups)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", default=None, help="list and compare, print what the run would do, change "
        "nothing",
    )  # fmt: skip
    parser.add_argument(
        "--sidecars", metavar="SUFFIX", help="objects named like another plus SUFFIX (e.g. .metadata.json) are its "
        "metadata, not items",
    )  # fmt: skip
    parser.add_argument("--folder", default=None, help="storage folder path (default: ingest/<source name>)")
    parser.add_argument("--schema", help="metadata schema file (JSON/YAML) to apply additively")
    parser.add_argument("--manifest", help="metadata manifest (CSV/JSON/JSONL/Parquet) to import")
    parser.add_argument(
        "--metadata-mode", choices=["merge", "overwrite"], help="how --manifest updates (default: merge)"
    )
    parser.add_argument(
        "--allow-unknown-keys", action="store_true", default=None,
        help="write manifest columns or sidecar keys the schema lacks",
    )  # fmt: skip
    parser.add_argument("--group-pattern", help=r"regex with named groups key/role, e.g. '(?P<key>s\d+)_(?P<role>a|b)'")
    parser.add_argument("--layout", choices=["grid", "carousel"], help="layout of every data group (default: grid)")
    parser.add_argument("--dataset", help="dataset title to link into (created if missing)")
    parser.add_argument("--project", help="project title or hash to attach the dataset to")
    parser.add_argument(
        "--max-failures",
        type=_count,
        default=0,
        help="failures the run tolerates before it ends Failed (default: 0, any failure); the exit code is 1 on any",
    )
    add_credentials_arguments(parser)


def add_credentials_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every command that talks to Encord takes (see :func:`resolve_credentials`)."""
    parser.add_argument("--credentials-block", help="a saved EncordCredentials block (default: env, else sandbox)")
    parser.add_argument(
        "--home",
        help="keep the embedded sandbox and the example under this directory (default: the sandbox in "
        "$PREFECT_HOME/encord/sandbox, the same for every command; the example in ./.prefect-encord/example)",
    )


def sandbox_directory(home: str | None) -> Path:
    """The embedded sandbox's data directory: under ``--home`` if given, else one per Prefect home."""
    from prefect_encord.state.settings import local_directory

    return Path(home).resolve() / "sandbox" if home else local_directory("sandbox")


def example_directory(home: str | None) -> Path:
    """Where the bundled example is written: under ``--home`` if given, else ``./.prefect-encord/example``."""
    return (Path(home) if home else EXAMPLE_HOME).resolve() / "example"


#: Options that shape a run over the user's own data; the bundled example brings its own.
_OWN_DATA_OPTIONS = ("schema", "manifest", "group_pattern", "layout", "metadata_mode", "allow_unknown_keys")


def usage_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with the ingest options, before anything runs: an option that would be ignored because the
    one it needs is missing, or options for one's own data given with no source (the example would run)."""
    own_data = args.source is not None or args.bucket_block is not None
    problems = ["give a directory or --bucket-block, not both"] if args.source and args.bucket_block else []
    if args.folder is not None and not args.folder.strip():
        problems.append("--folder is empty: give a folder path such as cams/2026, or leave it out (ingest/SOURCE)")
    ignored = [f"--{name.replace('_', '-')}" for name in _OWN_DATA_OPTIONS if getattr(args, name) is not None]
    if not own_data and ignored:
        problems.append(f"{', '.join(ignored)}: give a directory or --bucket-block (without either, the bundled "
                        "example runs with its own)")  # fmt: skip
    needs = (
        ("--include", "--bucket-block", args.include and args.bucket_block is None),
        ("--on-vanished", "--bucket-block", args.on_vanished is not None and args.bucket_block is None),
        ("--on-changed", "--bucket-block", args.on_changed is not None and args.bucket_block is None),
        ("--dry-run", "--bucket-block", args.dry_run and args.bucket_block is None),
        ("--refresh-inventory", "--bucket-block", args.refresh_inventory and args.bucket_block is None),
        ("--sidecars", "--bucket-block", args.sidecars is not None and args.bucket_block is None),
        (
            "--max-deletions",
            "--on-vanished archive or delete",
            args.max_deletions is not None and args.on_vanished not in ("archive", "delete"),
        ),
        ("--metadata-mode", "--manifest", own_data and args.metadata_mode is not None and args.manifest is None),
        (
            "--allow-unknown-keys",
            "--manifest or --sidecars",
            own_data and args.allow_unknown_keys and args.manifest is None and args.sidecars is None,
        ),
        ("--layout", "--group-pattern", own_data and args.layout is not None and args.group_pattern is None),
        ("--project", "--dataset", own_data and args.project is not None and args.dataset is None),
    )
    problems += [f"{option} needs {needed}" for option, needed, missing in needs if missing]
    return problems


def _count(text: str) -> int:
    """A whole number of 0 or more, refused by argparse (one line, before anything runs) otherwise."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, not {text!r}")
    return int(text)


@contextlib.contextmanager
def resolve_credentials(block: str | None, sandbox_dir: Path) -> Iterator[tuple[EncordCredentials, str]]:
    """Yield (credentials block, where) for the run; starts and stops the embedded sandbox if needed.

    Only a named block is saved; the others are handed to the flow as they are, so two commands at once
    never share (and overwrite) one saved block, and the run's parameters still hold no key: the
    environment's key stays in the environment, the sandbox's is a path.
    """
    from prefect_encord.blocks.credentials import (
        ENCORD_DOMAIN,
        ENCORD_DOMAIN_ENV,
        ENCORD_SSH_KEY_ENV,
        ENCORD_SSH_KEY_FILE_ENV,
        EncordCredentials,
    )

    if block:
        loaded = EncordCredentials.load(block)
        if not isinstance(loaded, EncordCredentials):  # called sync, Block.load returns the block itself
            raise TypeError(f"block {block!r} did not load as an EncordCredentials block")
        yield loaded, f"the Encord of block {block!r}"
        return
    if os.environ.get(ENCORD_SSH_KEY_FILE_ENV) or os.environ.get(ENCORD_SSH_KEY_ENV):
        credentials = EncordCredentials(domain=os.environ.get(ENCORD_DOMAIN_ENV, ENCORD_DOMAIN))
        yield credentials, "Encord (credentials from ENCORD_SSH_KEY_FILE / ENCORD_SSH_KEY)"
        return
    problem = credential_environment_problem(os.environ)
    if problem is not None:
        raise ValueError(problem)
    from prefect_encord.testing import credentials_block, sandbox_class

    purpose = (
        f"With no Encord credentials (--credentials-block, or {ENCORD_SSH_KEY_FILE_ENV} / {ENCORD_SSH_KEY_ENV}), "
        "running against the embedded sandbox"
    )
    with sandbox_class(purpose)(sandbox_dir) as sandbox:
        yield credentials_block(sandbox), f"the embedded sandbox at {sandbox.domain} (data in {sandbox.data_dir})"


def credential_environment_problem(environ: Mapping[str, str]) -> str | None:
    """Why the environment looks like an attempt at credentials that would be ignored, or None.

    With no key in the environment the CLI runs against the embedded sandbox; a user who set
    ``ENCORD_DOMAIN`` alone, or misspelt a variable (``ENCORD_SSH_KEYFILE``), meant their Encord and must hear
    so instead of watching a sandbox run.
    """
    from prefect_encord.blocks.credentials import ENCORD_DOMAIN_ENV, ENCORD_SSH_KEY_ENV, ENCORD_SSH_KEY_FILE_ENV

    variables = (ENCORD_SSH_KEY_FILE_ENV, ENCORD_SSH_KEY_ENV, ENCORD_DOMAIN_ENV)  # the SDK's names
    for name in sorted(environ):
        if name.startswith("ENCORD_") and name not in variables and environ[name]:
            close = difflib.get_close_matches(name, variables, n=1, cutoff=0.8)
            if close:
                return f"{name} is set, but the variable read is {close[0]}: rename it (or unset it for the sandbox)"
    if environ.get(ENCORD_DOMAIN_ENV):
        return (
            f"{ENCORD_DOMAIN_ENV} is set but neither {ENCORD_SSH_KEY_FILE_ENV} nor {ENCORD_SSH_KEY_ENV}: set one "
            f"(or unset {ENCORD_DOMAIN_ENV} for the embedded sandbox)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prefect_encord.blocks import load_cloud_block
    from prefect_encord.events.reporting import add_progress_listener, count_lines
    from prefect_encord.flows.ingest import check_inputs, ingest
    from prefect_encord.flows.parameters import CloudSource, DatasetStep, GroupingStep, LocalSource, MetadataStep
    from prefect_encord.planning.grouping import KeyPattern
    from prefect_encord.planning.layouts import RolesLayout
    from prefect_encord.runtime.temporary_server import guard_temporary_server

    console = Console()
    parameters: dict[str, Any] = {}
    if args.source is None and args.bucket_block is None:
        from prefect_encord.cli import example_data

        written = example_data.write_example(example_directory(args.home))
        parameters["source"] = LocalSource(directory=str(written["media"]))
        parameters["folder_path"] = args.folder or "examples/prefect-encord"
        parameters["metadata"] = MetadataStep(schema_file=str(written["schema"]), manifest=str(written["manifest"]))
        parameters["grouping"] = GroupingStep(
            rule=KeyPattern(pattern=example_data.GROUP_PATTERN), layout=example_data.GROUP_LAYOUT
        )
        parameters["dataset"] = DatasetStep(
            title=args.dataset or "prefect-encord example", project=args.project or "prefect-encord example"
        )
    else:
        source: LocalSource | CloudSource = (
            CloudSource(
                block=load_cloud_block(args.bucket_block),
                include=args.include,
                on_vanished=args.on_vanished or "report",
                on_changed=args.on_changed or "report",
                dry_run=bool(args.dry_run),
                max_deletions=100 if args.max_deletions is None else args.max_deletions,
                refresh_inventory=bool(args.refresh_inventory),
                sidecar_suffix=args.sidecars or "",
                sidecar_unknown_keys=bool(args.allow_unknown_keys),
            )
            if args.bucket_block
            else LocalSource(directory=str(Path(args.source).resolve()))
        )
        parameters["source"] = source
        parameters["folder_path"] = args.folder or f"ingest/{Path(args.source or args.bucket_block).name}"
        if args.schema or args.manifest:
            parameters["metadata"] = MetadataStep(
                schema_file=args.schema or "",
                manifest=args.manifest or "",
                mode=args.metadata_mode or "merge",
                allow_unknown_keys=bool(args.allow_unknown_keys),
            )
        if args.group_pattern:
            layout = RolesLayout(style=args.layout or "grid")
            parameters["grouping"] = GroupingStep(rule=KeyPattern(pattern=args.group_pattern), layout=layout)
        if args.dataset:
            parameters["dataset"] = DatasetStep(title=args.dataset, project=args.project or "")

    # Before a sandbox or Prefect server starts: a refusal comes at once, and nothing is written.
    check_inputs(
        parameters["source"], parameters["folder_path"], parameters.get("metadata"), parameters.get("grouping"),
        args.max_failures,
    )  # fmt: skip
    guard_temporary_server()
    with resolve_credentials(args.credentials_block, sandbox_directory(args.home)) as (credentials, where):
        console.print(f"Ingesting into {where}")
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("starting Prefect…", total=1.0)
            stop = add_progress_listener(
                lambda fraction, message: bar.update(task, completed=fraction, description=message)
            )
            try:
                state = ingest(credentials=credentials, max_failures=args.max_failures, **parameters, return_state=True)
            finally:
                stop()
        summary = _summary(state)
        console.print(Markdown(summary.markdown))
        for line in count_lines(summary.counts):
            console.print(line, highlight=False)
        gone = summary.vanished + summary.archived + summary.deleted
        for what, named, count in (
            ("changed since ingested (their items kept)", summary.changed_sources, summary.changed),
            ("changed since ingested (their items replaced)", summary.changed_sources, summary.replaced),
            ("deleted from the bucket", summary.vanished_sources, gone),
            ("back in the bucket (their items restored)", summary.restored_sources, summary.restored),
        ):
            if count:
                console.print(_named(what, named, count), highlight=False)
        if summary.item_map:  # a dry run has neither
            console.print(
                f"Run receipt: run id {summary.run_id} (undo with `prefect-encord rollback {summary.run_id}`)"
            )
            console.print(f"Item map (source → item, one JSON line each): {summary.item_map}")
        if not summary.item_map:
            console.print(state.message, highlight=False)  # the dry run's verdict
        elif state.name != "Completed":
            console.print(f"[bold red]{state.name}[/]: {state.message}")
    # Any failure, in any step, is a non-zero exit: a script must not take a partial run for a good one.
    return 0 if summary.failures == 0 else 1


#: Sources named on the command line before the rest are counted.
_SHOWN = 10


def _named(what: str, named: Sequence[str], count: int) -> str:
    """``"3 files changed since ingested (…): a, b, c"``, the first few named, the rest counted."""
    shown = ", ".join(named[:_SHOWN])
    more = (
        f" and {count - min(count, _SHOWN)} more (every one in the run's receipt and item map)"
        if count > _SHOWN
        else ""
    )
    return f"{count} files {what}: {shown}{more}"


def _summary(state: State[Any]) -> IngestSummary:
    """The run's summary, from a completed state or from the TooManyFailures a failed one carries."""
    from prefect_encord.events.reporting import TooManyFailures
    from prefect_encord.flows.ingest_summary import IngestSummary

    result = state.result(raise_on_failure=False)
    if isinstance(result, TooManyFailures):
        result = result.result
    if not isinstance(result, IngestSummary):  # the run failed before it had a summary: show why
        raise result if isinstance(result, BaseException) else RuntimeError(f"the ingest run ended {state.name}")
    return result
