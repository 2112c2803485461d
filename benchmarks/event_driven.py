"""Event-driven ingest, end to end (issue #29): how long a new object takes to become an Encord item, and how many
flow runs a burst of notifications makes.

Everything runs on this machine, as a user would run it: a local Prefect server (``prefect server start``), the
project's ``deployments/prefect.yaml`` deployed to a process work pool and a ``prefect worker``, ``prefect-encord
webhook-relay`` (its own process, with a token), the S3 emulator (moto, in this process) and the offline Encord
(the sandbox, in this process). moto sends no notifications, so the sandbox's ``S3Notifier`` plays S3's part:
it sees each object appear and posts S3's event record to the relay.

* **Latency**: ``--uploads`` objects (100) PUT one by one, ``--gap`` seconds apart; each object's latency is from
  the end of its PUT to the moment its item exists in the sandbox. p50, p95 and the worst are printed; the target
  is p95 within 60 s (Encord's own cloud sync runs once every 24 hours).
* **Burst**: ``--burst`` objects (10,000) put into the bucket, then one notification each posted to the relay, a
  tenth of them twice, in shuffled order (SNS and Event Grid deliver at least once, in no order). Printed: flow
  runs of ``ingest-on-upload`` (target at most 20), items in the folder and distinct URLs (exactly the objects),
  and the bucket listings the runs made (target none: named keys are looked up, not listed), counted from the
  S3 emulator's request log.

The relay batches keys for ``--within`` seconds (30, its default); the worker polls as Prefect's default worker
does. Linux or macOS; every server listens on 127.0.0.1 and stops at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from encord_sandbox import Sandbox, samples
from encord_sandbox.bucket_notifier import S3Notifier
from encord_sandbox.emulators import (
    MOTO_ACCESS_KEY_ID,
    MOTO_REGION,
    MOTO_SECRET_ACCESS_KEY,
    free_port,
    moto_s3,
    s3_client,
)
from targets import report_targets

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "incoming"
FOLDER = "incoming/uploads"  # the ingest-on-upload deployment's folder
TOKEN = "event-driven-benchmark"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class S3Requests(logging.Handler):
    """Counts the S3 emulator's requests by kind, from the request lines werkzeug logs for it."""

    _LINE = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) /([^/? ]+)(/[^? ]*)?(\?[^ ]*)? HTTP')

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        found = self._LINE.search(record.getMessage())
        if found is None:
            return
        method, _, key, query = found.groups()
        if method == "GET" and not (key or "/").strip("/") and "list-type" in (query or ""):
            self.counts["list"] += 1
        elif method == "HEAD":
            self.counts["head"] += 1
        else:
            self.counts[method.lower()] += 1


@contextmanager
def counted_s3() -> Iterator[tuple[str, S3Requests]]:
    """moto's S3, with its requests counted (werkzeug's request log, which ``moto_s3`` silences, kept aside)."""
    requests = S3Requests()
    with moto_s3() as endpoint:
        werkzeug = logging.getLogger("werkzeug")
        werkzeug.setLevel(logging.INFO)
        werkzeug.propagate = False
        werkzeug.addHandler(requests)
        try:
            yield endpoint, requests
        finally:
            werkzeug.removeHandler(requests)


class Stack:
    """The Prefect server, the deployments, a worker and the relay, as processes in ``workdir``."""

    def __init__(self, workdir: Path, within: float) -> None:
        self.workdir, self.within = workdir, within
        self.port, self.relay_port = free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
            "PREFECT_HOME": str(workdir / "prefect-home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
            "PREFECT_ENCORD_RELAY_TOKEN": TOKEN,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def notifications_url(self) -> str:
        return f"http://127.0.0.1:{self.relay_port}/buckets/notifications?token={TOKEN}"

    def start(self, name: str, *command: str, ready: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        deadline = time.monotonic() + 180
        while ready:
            try:
                with _DIRECT.open(ready, timeout=5):
                    return
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_tail = (self.workdir / f"{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"{name} did not start:\n{log_tail}") from exc
                time.sleep(0.5)

    def run(self, *command: str) -> None:
        subprocess.run(command, cwd=self.workdir, env=self.env, check=True, capture_output=True, timeout=600)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def runs(self) -> list[dict[str, Any]]:
        """The flow runs of the ingest-on-upload deployment."""
        deployment = _api("GET", f"{self.api}/deployments/name/encord-ingest/ingest-on-upload")
        return list(_api("POST", f"{self.api}/flow_runs/filter", {"deployments": {"id": {"any_": [deployment["id"]]}}}))


def _api(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with _DIRECT.open(request, timeout=60) as answer:
        return json.loads(answer.read())


def start_stack(stack: Stack, sandbox: Sandbox, s3_endpoint: str) -> None:
    """The server, the two blocks the deployments name, the deployments, the relay and a worker."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect_aws import MinIOCredentials

    from prefect_encord import EncordS3Integration
    from prefect_encord.testing import credentials_block

    (stack.workdir / "prefect_encord").symlink_to(ROOT / "prefect_encord")
    shutil.copy(ROOT / "deployments" / "prefect.yaml", stack.workdir / "prefect.yaml")
    stack.start("server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(stack.port),
                ready=f"{stack.api}/health")  # fmt: skip
    sandbox.add_integration("incoming-s3", "s3", endpoint_url=s3_endpoint, access_key_id=MOTO_ACCESS_KEY_ID,
                            secret_access_key=MOTO_SECRET_ACCESS_KEY, region=MOTO_REGION)  # fmt: skip
    with temporary_settings(updates={PREFECT_API_URL: stack.api}):
        credentials_block(sandbox).save("encord", overwrite=True)
        keys = MinIOCredentials(minio_root_user=MOTO_ACCESS_KEY_ID, minio_root_password=MOTO_SECRET_ACCESS_KEY,
                                region_name=MOTO_REGION)  # fmt: skip
        EncordS3Integration(bucket_name=BUCKET, integration="incoming-s3", endpoint_url=s3_endpoint,
                            credentials=keys).save("incoming", overwrite=True)  # fmt: skip
    stack.run(str(BIN / "prefect"), "work-pool", "create", "encord", "--type", "process")
    stack.run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
    stack.start("relay", str(BIN / "prefect-encord"), "webhook-relay", "--port", str(stack.relay_port),
                "--within", str(stack.within), ready=f"http://127.0.0.1:{stack.relay_port}/healthz")  # fmt: skip
    stack.start("worker", str(BIN / "prefect"), "worker", "start", "--pool", "encord", ready="")


def items_by_url(sandbox: Sandbox) -> dict[str, float]:
    """The URLs of the items in the deployment's folder (any folder named so), each with the time it was seen."""
    rows = sandbox.backend.store.query(
        "SELECT i.url FROM items i JOIN folders f ON i.folder = f.uuid WHERE f.name = 'uploads' "
        "AND i.is_placeholder = 0"
    )
    now = time.monotonic()
    return {row["url"]: now for row in rows}


def wait_for_runs(stack: Stack, settle_seconds: float, deadline: float) -> list[dict[str, Any]]:
    """The deployment's runs once all have ended and no new one came for ``settle_seconds``."""
    runs: list[dict[str, Any]] = []
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        latest = stack.runs()
        ended = all(run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for run in latest)
        if len(latest) != len(runs) or not ended:
            runs, quiet_since = latest, time.monotonic()
        elif latest and time.monotonic() - quiet_since >= settle_seconds:
            return latest
        time.sleep(2)
    return runs


def measure_latency(stack: Stack, sandbox: Sandbox, s3_endpoint: str, uploads: int, gap: float) -> dict[str, Any]:
    client = s3_client(s3_endpoint)
    keys = [f"latency/{n:04d}.png" for n in range(uploads)]
    put_at: dict[str, float] = {}
    seen: dict[str, float] = {}
    url_of = {key: f"{s3_endpoint}/{BUCKET}/{key}" for key in keys}
    with S3Notifier(s3_endpoint, BUCKET, stack.notifications_url) as notifier:
        for n, key in enumerate(keys):
            client.put_object(Bucket=BUCKET, Key=key, Body=samples.png(3, 3, (n % 256, 1, 2)))
            put_at[key] = time.monotonic()
            time.sleep(gap)
        deadline = time.monotonic() + 600
        while len(seen) < uploads and time.monotonic() < deadline:
            for url, at in items_by_url(sandbox).items():
                seen.setdefault(url, at)
            time.sleep(0.5)
    latencies = sorted(seen[url_of[key]] - put_at[key] for key in keys if url_of[key] in seen)
    runs = wait_for_runs(stack, settle_seconds=stack.within + 15, deadline=time.monotonic() + 300)
    return {"uploads": uploads, "arrived": len(latencies), "latencies": latencies, "runs": len(runs),
            "notifications": notifier.sent, "refused": notifier.failures}  # fmt: skip


def measure_burst(stack: Stack, sandbox: Sandbox, s3_endpoint: str, requests: S3Requests, count: int) -> dict[str, Any]:
    client = s3_client(s3_endpoint)
    keys = [f"burst/day {n // 1000:02d}/{n:06d}.png" for n in range(count)]
    for n, key in enumerate(keys):
        client.put_object(Bucket=BUCKET, Key=key, Body=samples.png(2, 2, (n % 256, n // 256 % 256, 9)))
    deliveries = [[key] for key in keys]
    deliveries += random.Random(3).sample(deliveries, count // 10)  # at least once: a tenth come twice
    random.Random(4).shuffle(deliveries)
    before_runs, before = len(stack.runs()), Counter(requests.counts)
    began = time.monotonic()
    for delivery in deliveries:
        record = {"eventName": "ObjectCreated:Put", "eventSource": "aws:s3",
                  "s3": {"bucket": {"name": BUCKET}, "object": {"key": delivery[0].replace(" ", "+")}}}  # fmt: skip
        body = json.dumps({"Records": [record]}).encode()
        request = urllib.request.Request(stack.notifications_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with _DIRECT.open(request, timeout=60) as answer:
            answer.read()
    posted = time.monotonic() - began
    runs = wait_for_runs(stack, settle_seconds=stack.within + 15, deadline=time.monotonic() + 3600)
    urls = {f"{s3_endpoint}/{BUCKET}/{key.replace(' ', '%20')}" for key in keys}
    items = sandbox.backend.store.query_one(
        "SELECT count(*) AS n, count(DISTINCT i.url) AS urls FROM items i JOIN folders f ON i.folder = f.uuid "
        "WHERE f.name = 'uploads' AND i.is_placeholder = 0 AND i.url LIKE ?", (f"%/{BUCKET}/burst/%",)
    )  # fmt: skip
    stored = {row["url"] for row in sandbox.backend.store.query(
        "SELECT url FROM items WHERE url LIKE ?", (f"%/{BUCKET}/burst/%",))}  # fmt: skip
    during = Counter(requests.counts)
    during.subtract(before)
    new_runs = runs[before_runs:] if len(runs) >= before_runs else runs
    return {"objects": count, "deliveries": len(deliveries), "posted_seconds": posted,
            "seconds": time.monotonic() - began, "runs": len(new_runs),
            "failed_runs": sum(run["state_type"] != "COMPLETED" for run in new_runs),
            "items": items["n"] if items else 0, "distinct": items["urls"] if items else 0,
            "missing": len(urls - stored), "listings": during["list"], "lookups": during["head"]}  # fmt: skip


def percentile(values: Sequence[float], fraction: float) -> float:
    return values[min(len(values) - 1, max(0, round(fraction * len(values)) - 1))] if values else float("nan")


def report(latency: dict[str, Any] | None, burst: dict[str, Any] | None) -> bool:
    checks: list[tuple[bool, str]] = []
    if latency is not None:
        values = latency["latencies"]
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        print(f"\nLatency: {latency['uploads']} objects PUT one by one, {latency['notifications']} notifications "
              f"({len(latency['refused'])} refused), {latency['runs']} flow runs")  # fmt: skip
        print(
            f"  PUT to item: p50 {p50:.1f} s, p95 {p95:.1f} s, worst {max(values, default=float('nan')):.1f} s, "
            f"best {min(values, default=float('nan')):.1f} s; {latency['arrived']} of {latency['uploads']} arrived"
        )
        arrived = f"every object became an item ({latency['arrived']} of {latency['uploads']})"
        checks += [(latency["arrived"] == latency["uploads"], arrived), (p95 <= 60, f"p95 within 60 s ({p95:.1f} s)")]
    if burst is not None:
        print(
            f"\nBurst: {burst['objects']:,} objects, {burst['deliveries']:,} notifications (duplicates, shuffled) "
            f"posted in {burst['posted_seconds']:.1f} s; all items in {burst['seconds']:.1f} s"
        )
        print(f"  {burst['runs']} flow runs ({burst['failed_runs']} not completed); {burst['items']:,} items, "
              f"{burst['distinct']:,} distinct URLs, {burst['missing']} objects missing; bucket listings "
              f"{burst['listings']}, object lookups {burst['lookups']:,}")  # fmt: skip
        checks += [
            (burst["runs"] <= 20 and not burst["failed_runs"], f"at most 20 runs, all completed ({burst['runs']})"),
            (burst["items"] == burst["distinct"] == burst["objects"] and burst["missing"] == 0,
             f"exactly one item per object ({burst['items']:,} items for {burst['objects']:,} objects)"),
            (burst["listings"] == 0, f"no bucket listing ({burst['listings']})"),
        ]  # fmt: skip
    return report_targets("event-driven ingest", checks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=100, help="objects PUT one by one for latency (0: skip)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two PUTs (0.5)")
    parser.add_argument("--burst", type=int, default=10_000, help="objects notified at once (0: skip)")
    parser.add_argument("--within", type=float, default=30.0, help="the relay's batching window in seconds (30)")
    args = parser.parse_args(argv)
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="event-driven-")))
        s3_endpoint, requests = cleanup.enter_context(counted_s3())
        s3_client(s3_endpoint).create_bucket(Bucket=BUCKET)
        sandbox = cleanup.enter_context(Sandbox(workdir / "sandbox"))
        stack = Stack(workdir, args.within)
        cleanup.callback(stack.stop)
        began = time.monotonic()
        start_stack(stack, sandbox, s3_endpoint)
        print(f"Prefect server, deployments, relay and worker started in {time.monotonic() - began:.0f} s")
        latency = measure_latency(stack, sandbox, s3_endpoint, args.uploads, args.gap) if args.uploads else None
        burst = measure_burst(stack, sandbox, s3_endpoint, requests, args.burst) if args.burst else None
        return 0 if report(latency, burst) else 1


if __name__ == "__main__":
    sys.exit(main())
