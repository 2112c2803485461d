"""Request-count benchmark: our ingest tasks against a seed-style script, one SDK call per file.

Both sides run in this process against one Encord sandbox (with a simulated network latency on every
answer) and one moto S3 emulator, each into folders of its own:

* **ours**: ``register_bucket`` over the bucket, ``upload_directory`` over a local directory, and
  ``create_data_groups`` (4 images per group, grid layout) for the grouped quarter of each;
* **seed-style**: what the seed documents show, file by file: per cloud object one data-upload job with a
  one-entry JSON spec and its result; ``folder.upload_image`` per local file; ``folder.create_data_group``
  per group.

Every request is counted where it leaves the process: the SDK's ``requests`` adapter and httpx's transport
(our signed-URL PUTs). Requests to the sandbox's ``/_blobs/`` are file transfers; all others are Encord API
calls. benchmarks/README.md explains the figures and holds a measured run.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import quote, urlsplit
from uuid import UUID

import boto3
import httpx
import requests.adapters
from encord.orm.storage import DataGroupGrid
from encord.storage import StorageFolder
from encord_sandbox import Sandbox
from encord_sandbox.samples import png
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import ThreadedMotoServer
from prefect_aws import MinIOCredentials
from pydantic import SecretStr
from targets import report_targets

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.planning.grouping import KeyPattern
from prefect_encord.planning.layouts import GridLayout
from prefect_encord.tasks.data_groups import create_data_groups
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.tasks.uploads import upload_directory
from prefect_encord.testing import credentials_block

ROLES = ["cam0", "cam1", "cam2", "cam3"]  # 4 images per group, in grid order
GROUPED_SHARE = 0.25
RULE = KeyPattern(pattern=r"(?P<key>scene-\d+)_(?P<role>cam\d)")
LAYOUT = GridLayout(roles=ROLES)
RULE_REGEX = re.compile(RULE.pattern)
S3_KEY = "testing"  # moto accepts any credentials
REGION = "us-east-1"
TARGET_REQUESTS_PER_1000 = 5.0
TARGET_UPLOAD_SPEEDUP = 20.0


# ------------------------------------------------------------------------------------------ measuring


class RequestCounter:
    """Counts every HTTP request this process sends through ``requests`` (the SDK) or httpx (our PUTs)."""

    def __init__(self, sandbox_domain: str) -> None:
        self.api = self.blobs = self.other = 0
        self._sandbox = urlsplit(sandbox_domain).netloc
        self._lock = threading.Lock()

    def count(self, url: str) -> None:
        parts = urlsplit(url)
        with self._lock:
            if parts.netloc != self._sandbox:
                self.other += 1  # not expected: S3 listing goes through botocore's own urllib3 pool
            elif parts.path.startswith("/_blobs/"):
                self.blobs += 1  # a file transfer to a signed URL: the sandbox's stand-in for a bucket
            else:
                self.api += 1

    @contextmanager
    def installed(self) -> Iterator[RequestCounter]:
        """Count while inside, at the lowest level both clients share with no caching or retry above it."""
        sdk_send = requests.adapters.HTTPAdapter.send
        httpx_send = httpx.HTTPTransport.handle_request

        def counted_sdk(adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kw: Any) -> Any:
            self.count(str(request.url))
            return sdk_send(adapter, request, **kw)

        def counted_httpx(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
            self.count(str(request.url))
            return httpx_send(transport, request)

        with (
            patch.object(requests.adapters.HTTPAdapter, "send", counted_sdk),
            patch.object(httpx.HTTPTransport, "handle_request", counted_httpx),
        ):
            yield self


class RssSampler:
    """Samples this process's resident set size every 20 ms, so each phase can report its own peak."""

    def __init__(self) -> None:
        self._peak = current_rss()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def reset(self) -> int:
        """Start a new peak from now; returns the RSS now."""
        with self._lock:
            self._peak = current_rss()
            return self._peak

    @property
    def peak(self) -> int:
        with self._lock:
            return max(self._peak, current_rss())

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            rss = current_rss()
            with self._lock:
                self._peak = max(self._peak, rss)

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def current_rss() -> int:
    """Bytes resident now (Linux ``/proc``), or the process's peak so far where there is no ``/proc``."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def peak_rss() -> int:
    """The process's peak RSS in bytes (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class Phase:
    """One measured step of one side: the files it covers, what it made, and what that cost."""

    side: str
    name: str
    files: int
    made: int = 0  # items registered or uploaded, or groups created
    api: int = 0
    blobs: int = 0
    other: int = 0
    seconds: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0

    @property
    def api_per_1000(self) -> float:
        return 1000 * self.api / self.files

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds else math.inf


class Meter:
    """Measures phases: requests sent, wall time and RSS between entering and leaving :meth:`phase`."""

    def __init__(self, counter: RequestCounter, rss: RssSampler) -> None:
        self.counter, self.rss = counter, rss
        self.phases: list[Phase] = []

    @contextmanager
    def phase(self, side: str, name: str, files: int) -> Iterator[Phase]:
        """Measure the block inside; it sets ``made`` on the phase it gets."""
        c = self.counter
        result = Phase(side, name, files, rss_start=self.rss.reset())
        before = (c.api, c.blobs, c.other)
        start = time.perf_counter()
        yield result
        result.seconds = time.perf_counter() - start
        result.api, result.blobs, result.other = (c.api - before[0], c.blobs - before[1], c.other - before[2])
        result.rss_peak = self.rss.peak
        self.phases.append(result)
        print(
            f"  {side:<10} {name:<14} {files:>6} files -> {result.made:>6} made "
            f"{result.seconds:7.1f} s {result.api:>6} API requests",
            flush=True,
        )


# ----------------------------------------------------------------------------------------- test data


def scene_count(files: int) -> int:
    """How many groups ``files`` files make: a quarter of them, rounded to whole groups of 4."""
    return round(files * GROUPED_SHARE / len(ROLES))


def file_names(count: int) -> list[str]:
    """``count`` file names: the cameras of :func:`scene_count` scenes, then single images."""
    grouped = [f"grouped/scene-{s:05d}_{role}.png" for s in range(scene_count(count)) for role in ROLES]
    return grouped + [f"single/img-{i:06d}.png" for i in range(count - len(grouped))]


def distinct_png(index: int) -> bytes:
    """A tiny PNG whose colour, and so content hash, is unique to ``index`` (up to 16.7 M files)."""
    return png(color=(index & 255, (index >> 8) & 255, (index >> 16) & 255))


def fill_bucket(bucket: str, names: list[str], first: int) -> None:
    """Create ``bucket`` with a distinct PNG per name, straight into moto's backend (no HTTP: 10k in ~1 s)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, REGION)
    for index, name in enumerate(names, start=first):
        backend.put_object(bucket, name, distinct_png(index))


def fill_directory(root: Path, names: list[str], first: int) -> Path:
    for index, name in enumerate(names, start=first):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(distinct_png(index))
    return root


# ------------------------------------------------------------------------------------------ the sides


@dataclass(frozen=True)
class Inputs:
    """What one side ingests: a bucket of ``cloud`` objects and a directory of ``local`` files."""

    bucket: str
    directory: Path
    cloud: int
    local: int


@dataclass(frozen=True)
class Environment:
    credentials: EncordCredentials
    s3_endpoint: str
    integration: str  # title of the sandbox's cloud integration reading the S3 emulator
    ledger_dir: Path  # register_bucket's job ledger


def run_ours(meter: Meter, env: Environment, inputs: Inputs) -> None:
    """Our tasks, as a flow calls them (``.fn`` is the same code without a Prefect run around it)."""
    credentials = env.credentials
    storage = EncordS3Integration(
        bucket_name=inputs.bucket,
        integration=env.integration,
        endpoint_url=env.s3_endpoint,
        credentials=MinIOCredentials(minio_root_user=S3_KEY, minio_root_password=SecretStr(S3_KEY), region_name=REGION),
    )
    cloud_folder = get_or_create_folder.fn(credentials, "benchmark/ours/cloud")
    local_folder = get_or_create_folder.fn(credentials, "benchmark/ours/local")

    with meter.phase("ours", "cloud register", inputs.cloud) as phase:
        registered = register_bucket.fn(credentials, storage, cloud_folder, ledger_dir=env.ledger_dir)
        cloud_items = registered.item_map.to_dict()
        phase.made = len(cloud_items)
    with meter.phase("ours", "cloud groups", inputs.cloud) as phase:
        phase.made = len(create_data_groups.fn(credentials, cloud_folder, cloud_items, RULE, LAYOUT).groups)
    with meter.phase("ours", "local upload", inputs.local) as phase:
        uploaded = upload_directory.fn(credentials, local_folder, inputs.directory)
        phase.made = len(uploaded.items)
    with meter.phase("ours", "local groups", inputs.local) as phase:
        phase.made = len(create_data_groups.fn(credentials, local_folder, uploaded.items, RULE, LAYOUT).groups)


def run_seed_style(meter: Meter, env: Environment, inputs: Inputs) -> None:
    """The seed documents' way with the official SDK, one call per file, as people script it by hand today."""
    client = env.credentials.get_client()
    top = client.create_storage_folder("benchmark-seed-style")
    cloud_folder = client.create_storage_folder("cloud", parent_folder=top)
    local_folder = client.create_storage_folder("local", parent_folder=top)
    integration_id = str(next(i.id for i in client.get_cloud_integrations() if i.title == env.integration))
    s3 = boto3.client(
        "s3", endpoint_url=env.s3_endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY, region_name=REGION
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=inputs.bucket)
    keys = [entry["Key"] for page in pages for entry in page["Contents"]]

    with meter.phase("seed-style", "cloud register", inputs.cloud) as phase:
        cloud_items: dict[str, str] = {}
        for key in keys:  # one job per object: a one-entry JSON spec, then its result
            spec = {"images": [{"objectUrl": f"{env.s3_endpoint}/{inputs.bucket}/{quote(key)}", "title": key}]}
            job = cloud_folder.add_private_data_to_folder_start(integration_id, spec)
            result = cloud_folder.add_private_data_to_folder_get_result(job)
            cloud_items[key] = str(result.items_with_names[0].item_uuid)
        phase.made = len(cloud_items)
    with meter.phase("seed-style", "cloud groups", inputs.cloud) as phase:
        phase.made = create_groups_one_by_one(cloud_folder, cloud_items)
    with meter.phase("seed-style", "local upload", inputs.local) as phase:
        local_items = {path.name: str(local_folder.upload_image(path)) for path in inputs.directory.rglob("*.png")}
        phase.made = len(local_items)
    with meter.phase("seed-style", "local groups", inputs.local) as phase:
        phase.made = create_groups_one_by_one(local_folder, local_items)


def create_groups_one_by_one(folder: StorageFolder, items: dict[str, str]) -> int:
    """``create_data_group`` per scene, its cameras in role order; returns the number of groups."""
    scenes: dict[str, dict[str, str]] = {}
    for source, item in items.items():
        if match := RULE_REGEX.search(Path(source).name):
            scenes.setdefault(match["key"], {})[match["role"]] = item
    for name, cameras in sorted(scenes.items()):
        folder.create_data_group(DataGroupGrid(name=name, layout_contents=[UUID(cameras[r]) for r in ROLES]))
    return len(scenes)


# ------------------------------------------------------------------------------------------ reporting


def mib(size: int) -> float:
    return size / 2**20


def expected_made(phase: Phase) -> int:
    """Items a phase must leave behind: one per file, or one group per scene."""
    return scene_count(phase.files) if phase.name.endswith("groups") else phase.files


def total(phases: list[Phase], side: str) -> Phase:
    """One side's four phases as one: every file once, every request, all the time."""
    steps = [p for p in phases if p.side == side]
    return Phase(
        side,
        "all four",
        files=sum(p.files for p in steps if not p.name.endswith("groups")),
        made=sum(p.made for p in steps),
        api=sum(p.api for p in steps),
        blobs=sum(p.blobs for p in steps),
        other=sum(p.other for p in steps),
        seconds=sum(p.seconds for p in steps),
        rss_start=min(p.rss_start for p in steps),
        rss_peak=max(p.rss_peak for p in steps),
    )


def report(phases: list[Phase], latency_ms: float) -> bool:
    """Print the table, the speed-ups and the targets; True if every target is met and nothing is missing."""
    rows = phases + [total(phases, "ours"), total(phases, "seed-style")]
    print(f"\nResults at {latency_ms:g} ms simulated latency per request ('/1k': per 1,000 files, to compare sides)")
    header = (
        f"{'side':<10} {'phase':<14} {'files':>6} {'made':>6} {'API req':>7} {'API/1k':>7} {'PUTs':>5} "
        f"{'wall s':>7} {'files/s':>8} {'RSS peak MiB':>12} {'(growth)':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for p in rows:
        peak, growth = mib(p.rss_peak), mib(p.rss_peak - p.rss_start)
        print(
            f"{p.side:<10} {p.name:<14} {p.files:>6} {p.made:>6} {p.api:>7} {p.api_per_1000:>7.1f} {p.blobs:>5} "
            f"{p.seconds:>7.1f} {p.files_per_second:>8.1f} {peak:>12,.0f} {growth:>+8,.0f}"
        )
    stray = sum(p.other for p in phases)
    print(f"Requests to other hosts through requests/httpx: {stray}; process peak RSS: {mib(peak_rss()):,.0f} MiB")

    ours = {p.name: p for p in rows if p.side == "ours"}
    seed = {p.name: p for p in rows if p.side == "seed-style"}
    print("\nOurs against seed-style: speed-up (files/s) and API requests per 1,000 files")
    for name, mine in ours.items():
        theirs = seed[name]
        print(
            f"  {name:<14} {mine.files_per_second / theirs.files_per_second:>6.1f}x faster"
            f"  {mine.api_per_1000:>6.1f} vs {theirs.api_per_1000:>7.1f} API requests per 1,000 files"
        )

    register_and_groups = 1000 * (ours["cloud register"].api + ours["cloud groups"].api) / ours["cloud register"].files
    speed_up = ours["local upload"].files_per_second / seed["local upload"].files_per_second
    missing = [f"{p.side} {p.name}: {p.made} of {expected_made(p)}" for p in phases if p.made != expected_made(p)]
    checks = [
        (
            register_and_groups <= TARGET_REQUESTS_PER_1000,
            f"register + groups: {register_and_groups:.2f} API requests per 1,000 cloud files "
            f"(target <= {TARGET_REQUESTS_PER_1000:g})",
        ),
        (
            speed_up >= TARGET_UPLOAD_SPEEDUP,
            f"local upload: {speed_up:.1f}x the seed-style loop's files/s at {latency_ms:g} ms latency "
            f"(target >= {TARGET_UPLOAD_SPEEDUP:g}x)",
        ),
        (not missing, "every file ingested and every group created" + (f": {missing}" if missing else "")),
    ]
    return report_targets("issue #5", checks)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", type=int, default=10_000, help="S3 objects for our tasks (default 10,000)")
    parser.add_argument("--local", type=int, default=2_000, help="local files for our tasks (default 2,000)")
    parser.add_argument("--seed-cloud", type=int, default=1_000, help="S3 objects, seed-style (default 1,000)")
    parser.add_argument("--seed-local", type=int, default=200, help="local files, seed-style (default 200)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="delay of every sandbox answer (default 20)")
    parser.add_argument("--verbose", action="store_true", help="show the tasks' and servers' log lines")
    args = parser.parse_args(argv)
    for option in ("cloud", "local", "seed_cloud", "seed_local"):
        if getattr(args, option) < 4 * len(ROLES):
            parser.error(f"--{option.replace('_', '-')} must be at least {4 * len(ROLES)}, so that some are grouped")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"  # every server here is on loopback
    if not args.verbose:
        for noisy in ("prefect", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    sizes = {"ours": (args.cloud, args.local), "seed-style": (args.seed_cloud, args.seed_local)}
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest-")))
        started = time.perf_counter()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        s3_endpoint = f"http://{host}:{port}"
        inputs, first = {}, 0
        for side, (cloud, local) in sizes.items():  # every file of both sides has distinct content
            fill_bucket(f"bench-{side}", file_names(cloud), first)
            directory = fill_directory(work / f"local-{side}", file_names(local), first + cloud)
            inputs[side] = Inputs(f"bench-{side}", directory, cloud, local)
            first += cloud + local
        sandbox = stack.enter_context(Sandbox(work / "sandbox", latency_ms=args.latency_ms))
        sandbox.add_integration(
            "benchmark-s3",
            "s3",
            endpoint_url=s3_endpoint,
            access_key_id=S3_KEY,
            secret_access_key=S3_KEY,
            region=REGION,
        )
        env = Environment(credentials_block(sandbox), s3_endpoint, "benchmark-s3", work / "ledger")
        print(
            f"Sandbox {sandbox.domain} ({args.latency_ms:g} ms latency), S3 emulator {s3_endpoint}: "
            f"{first:,} files made in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        counter, rss = RequestCounter(sandbox.domain), RssSampler()
        meter = Meter(counter, rss)
        stack.enter_context(counter.installed())
        stack.enter_context(rss.running())
        run_ours(meter, env, inputs["ours"])
        run_seed_style(meter, env, inputs["seed-style"])
    return 0 if report(meter.phases, args.latency_ms) else 1


if __name__ == "__main__":
    sys.exit(main())
