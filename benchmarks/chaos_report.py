"""Chaos report: our ingest tasks against a sandbox that misbehaves, and the figures that prove nothing was lost.

It registers ``--files`` S3 objects (moto, in this process) and uploads ``--local`` files from a temporary
directory, each set with a few corrupt files among them, into a sandbox served by another process
(``encord-sandbox serve``) in chaos mode: 503s, 429s with ``Retry-After``, dropped connections (a
job start's answer lost after the job started, included), slow answers, units failing once and long polls
answering early. Then it checks the folders: one item per good file, none twice, every corrupt file
reported. A good file whose every retry met a fault (a PUT refused five times running) is reported too;
the side it belongs to is then run once more, which must bring it in without duplicating anything. With
``--baseline`` the same work first runs against a sandbox without chaos, so the requests that faults cost
can be read off. Each pass gets a fresh sandbox; request and fault counts are those of the first run.

The tasks run as a flow calls them (``.fn``): the figures are those of ``register_bucket`` and
``upload_directory``, without a Prefect API. The exit status is 0 only if no good file is missing or
duplicated and every corrupt one is reported.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import httpx
from encord_sandbox.chaos import STATS_PATH, ChaosConfig
from encord_sandbox.process import sandbox_process
from encord_sandbox.samples import png
from encord_sandbox.server import ADMIN_KEY_NAME, Sandbox
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer
from prefect_aws import MinIOCredentials
from pydantic import SecretStr

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.planning.identity_keys import IDENTITY_KEY, PATH_KEY
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.tasks.uploads import upload_directory

S3_KEY = "testing"  # moto accepts any credentials
REGION = "us-east-1"
INTEGRATION = "chaos-s3"
CORRUPT = 5
#: Every route of the registration and upload paths; folder creation is not one (the SDK never retries it).
ROUTES = (
    r"^POST .*/data-upload-jobs$",
    r"^GET .*/data-upload-jobs/\{id\}$",
    r"^POST /v2/public/storage/items/get-bulk$",
    r"^GET /v2/public/storage/folders/\{id\}(/items)?$",
    r"^GET /v2/public/cloud-integrations$",
    r"^POST .*/upload-signed-urls$",
    r"^PUT /_blobs/",
)


@dataclass
class Outcome:
    """One pass (baseline or chaos): what the sandbox saw and what the folders hold afterwards."""

    name: str
    seconds: float = 0.0
    requests: int = 0
    transfers: int = 0  # of the requests, PUTs to signed URLs
    faults: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)  # side -> items in its folder
    duplicates: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)  # side -> files the first run reported failed
    rerun_failures: dict[str, list[str]] = field(default_factory=dict)  # the same after one re-run, if any

    def good_failures(self, failures: dict[str, list[str]]) -> list[str]:
        """Reported failures of good files: a fault that outlasted every retry."""
        return [f for side in failures.values() for f in side if "corrupt-" not in f]

    def corrupt_reported(self) -> int:
        return sum("corrupt-" in f for side in self.failures.values() for f in side)

    def lost(self, expected: dict[str, int]) -> int:
        """Good files in the end neither in their folder nor reported: the figure that must be 0."""
        final = self.rerun_failures or self.failures
        return sum(
            max(count - self.items.get(side, 0) - len(self.good_failures({side: final.get(side, [])})), 0)
            for side, count in expected.items()
        )


def fill_bucket(bucket: str, files: int) -> None:
    """Distinct tiny PNGs and ``CORRUPT`` broken ones, straight into moto's backend (10,000 in about a second)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, REGION)
    for index in range(files):
        backend.put_object(bucket, f"img-{index:07d}.png", distinct_png(index))
    for index in range(CORRUPT):
        backend.put_object(bucket, f"corrupt-{index}.png", b"not an image")


def fill_directory(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    for index in range(files):
        (root / f"local-{index:06d}.png").write_bytes(distinct_png(index + 10_000_000))
    for index in range(CORRUPT):
        (root / f"corrupt-{index}.png").write_bytes(f"not an image {index}".encode())
    return root


def distinct_png(index: int) -> bytes:
    """A tiny PNG whose content hash is unique to ``index``."""
    return png(color=(index & 255, (index >> 8) & 255, (index >> 16) & 255), width=4 + (index >> 24), height=4)


def run_pass(name: str, work: Path, chaos: ChaosConfig, s3_endpoint: str, args: argparse.Namespace) -> Outcome:
    """Serve a fresh sandbox with ``chaos``, register the bucket and upload the directory, then check."""
    data_dir = work / name / "sandbox"
    setup = Sandbox(data_dir)
    setup.add_integration(INTEGRATION, "s3", endpoint_url=s3_endpoint, access_key_id=S3_KEY,
                          secret_access_key=S3_KEY, region=REGION)  # fmt: skip
    setup.backend.close()
    storage = EncordS3Integration(
        bucket_name=args.bucket, integration=INTEGRATION, endpoint_url=s3_endpoint,
        credentials=MinIOCredentials(minio_root_user=S3_KEY, minio_root_password=SecretStr(S3_KEY), region_name=REGION),
    )  # fmt: skip
    outcome = Outcome(name)
    with sandbox_process(data_dir, chaos=chaos, job_workers=args.job_workers) as domain:
        credentials = EncordCredentials(ssh_private_key_path=data_dir / ADMIN_KEY_NAME, domain=domain)
        folders = {side: get_or_create_folder.fn(credentials, f"chaos/{name}/{side}") for side in ("cloud", "local")}
        print(f"  {name}: registering {args.files:,} objects and uploading {args.local:,} files ...", flush=True)
        started = time.perf_counter()
        outcome.failures = ingest(credentials, storage, folders, args, work / name / "ledger", ("cloud", "local"))
        outcome.seconds = time.perf_counter() - started
        stats = httpx.get(domain + STATS_PATH).json()
        outcome.requests, outcome.transfers, outcome.faults = stats["requests"], stats["transfers"], stats["faults"]
        again = tuple(side for side, failed in outcome.failures.items() if outcome.good_failures({side: failed}))
        if again:  # good files the faults defeated were reported; running again must bring them in, once
            print(f"  {name}: running {' and '.join(again)} again for the good files reported failed", flush=True)
            outcome.rerun_failures = ingest(credentials, storage, folders, args, work / name / "ledger", again)
        check_folders(credentials, folders, outcome)
    return outcome


def ingest(
    credentials: EncordCredentials,
    storage: EncordS3Integration,
    folders: dict[str, str],
    args: argparse.Namespace,
    ledger: Path,
    sides: tuple[str, ...],
) -> dict[str, list[str]]:
    """Register the bucket and/or upload the directory; returns the failures each reported (file: error)."""
    failures = {}
    if "cloud" in sides:
        registered = register_bucket.fn(credentials, storage, folders["cloud"], ledger_dir=ledger)
        failures["cloud"] = [f"{f.urls[0]}: {f.error}" for f in registered.unit_errors]
    if "local" in sides:
        uploaded = upload_directory.fn(credentials, folders["local"], args.directory, ledger_dir=ledger)
        failures["local"] = [f"{path}: {error}" for path, error in uploaded.failed.items()]
    return failures


def check_folders(credentials: EncordCredentials, folders: dict[str, str], outcome: Outcome) -> None:
    """Count each folder's items and any identity (URL, or path and content digest for uploads) seen twice."""
    client = credentials.get_client()
    for side, folder_uuid in folders.items():
        items = list(client.get_storage_folder(UUID(folder_uuid)).list_items(page_size=1000))
        own = (PATH_KEY, IDENTITY_KEY)
        identities = Counter(item.url or tuple((item.client_metadata or {}).get(k) for k in own) for item in items)
        outcome.items[side] = len(items)
        outcome.duplicates += sum(count - 1 for count in identities.values())


def report(outcomes: list[Outcome], args: argparse.Namespace) -> bool:
    """Print the figures; True if nothing was lost, duplicated or left unreported."""
    expected = {"cloud": args.files, "local": args.local}
    files = args.files + args.local + 2 * CORRUPT
    print(f"\nChaos report: {args.files:,} S3 objects and {args.local:,} local files (+{CORRUPT} corrupt each), "
          f"seed {args.seed}, {args.job_workers} sandbox job workers")  # fmt: skip
    print(f"{'pass':<9} {'wall s':>7} {'API req':>8} {'API/1k':>7} {'PUTs':>6}  faults injected (by kind)")
    for outcome in outcomes:
        faults = ", ".join(f"{kind.replace('_', ' ')} {count}" for kind, count in sorted(outcome.faults.items()))
        api = outcome.requests - outcome.transfers
        print(f"{outcome.name:<9} {outcome.seconds:>7.1f} {api:>8} {1000 * api / files:>7.1f} {outcome.transfers:>6}"
              f"  {faults or '-'}")  # fmt: skip
    passed = True
    for outcome in outcomes:
        lost, extra = outcome.lost(expected), sum(max(outcome.items[s] - n, 0) for s, n in expected.items())
        ok = lost == extra == outcome.duplicates == 0 and outcome.corrupt_reported() == 2 * CORRUPT
        passed = passed and ok
        print(f"\n{outcome.name}: {'PASS' if ok else 'FAIL'}")
        print(f"  load held: {outcome.requests:,} requests ({outcome.requests - outcome.transfers:,} API calls, "
              f"{outcome.transfers:,} PUTs) in {outcome.seconds:.1f} s")  # fmt: skip
        print(f"  faults survived: {sum(outcome.faults.values())} (injected, and the run finished)")
        defeated = outcome.good_failures(outcome.failures)
        print(f"  failures reported: all {outcome.corrupt_reported()} corrupt files, with their error; "
              f"{len(defeated)} good files whose every retry met a fault")  # fmt: skip
        for failure in defeated[:3]:
            print(f"    {failure[:160]}")
        if outcome.rerun_failures:
            left = outcome.good_failures(outcome.rerun_failures)
            print(f"  after one re-run: {len(defeated) - len(left)} of them ingested, {len(left)} still reported")
        print(f"  items: cloud {outcome.items['cloud']:,} of {args.files:,}, "
              f"local {outcome.items['local']:,} of {args.local:,}")  # fmt: skip
        print(f"  items lost = {lost}, duplicates = {outcome.duplicates}, unexpected items = {extra}")
    return passed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="S3 objects to register (default 10,000)")
    parser.add_argument("--local", type=int, default=1_000, help="local files to upload (default 1,000)")
    parser.add_argument("--seed", type=int, default=3, help="chaos seed (default 3)")
    parser.add_argument("--error-rate", type=float, default=0.15, help="503 share (default 0.15)")
    parser.add_argument("--throttle-rate", type=float, default=0.1, help="429 share (default 0.1)")
    parser.add_argument("--drop-rate", type=float, default=0.1, help="dropped connections (default 0.1)")
    parser.add_argument("--slow-rate", type=float, default=0.05, help="answers 1 s late (default 0.05)")
    parser.add_argument("--unit-failure-rate", type=float, default=0.01, help="units failing once (default 0.01)")
    parser.add_argument("--poll-timeout-rate", type=float, default=0.3, help="early long polls (default 0.3)")
    parser.add_argument("--job-workers", type=int, default=8, help="sandbox job workers (default 8)")
    parser.add_argument("--baseline", action="store_true", help="first run the same work without chaos")
    parser.add_argument("--verbose", action="store_true", help="show the tasks' log lines")
    return parser.parse_args(argv)


def chaos_config(args: argparse.Namespace) -> ChaosConfig:
    return ChaosConfig(
        seed=args.seed, error_rate=args.error_rate, throttle_rate=args.throttle_rate, retry_after_seconds=1,
        drop_rate=args.drop_rate, slow_rate=args.slow_rate, slow_seconds=1.0,
        unit_failure_rate=args.unit_failure_rate, poll_timeout_rate=args.poll_timeout_rate, routes=ROUTES,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"  # every server here is on loopback
    if not args.verbose:
        for noisy in ("prefect", "werkzeug", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chaos-report-")))
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        args.bucket = f"chaos-{uuid.uuid4().hex[:12]}"
        fill_bucket(args.bucket, args.files)
        args.directory = fill_directory(work / "local", args.local)
        passes: list[tuple[str, ChaosConfig]] = [("chaos", chaos_config(args))]
        if args.baseline:
            passes.insert(0, ("baseline", ChaosConfig(seed=args.seed)))  # no rates: it only counts requests
        outcomes = [run_pass(name, work, config, f"http://{host}:{port}", args) for name, config in passes]
    return 0 if report(outcomes, args) else 1


if __name__ == "__main__":
    sys.exit(main())
