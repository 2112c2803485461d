"""The SDK tour runs unmodified against ``encord-sandbox serve`` in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from encord_sandbox.emulators import free_port

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "encord_sandbox.cli"]


@pytest.fixture
def served_sandbox(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    data_dir = tmp_path / "sandbox"
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    domain = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{domain}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "sandbox serve did not start"
            time.sleep(0.2)
        yield domain, data_dir
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0
    output = process.stdout.read().decode() if process.stdout else ""
    assert f"listening on {domain}" in output and "admin_ed25519" in output


def _add_integration(data_dir: Path, title: str, kind: str, settings: dict[str, str]) -> str:
    result = subprocess.run(
        [*CLI, "add-integration", "--data-dir", str(data_dir), "--title", title, "--kind", kind,
         "--settings", json.dumps(settings)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip()


def test_tour_against_served_sandbox(served_sandbox: tuple[str, Path], s3_endpoint: str, tmp_path: Path) -> None:
    domain, data_dir = served_sandbox
    media_root = tmp_path / "media"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="tour-bucket")
    _add_integration(data_dir, "local-media", "local", {"root": str(media_root)})
    _add_integration(data_dir, "s3-media", "s3", {"endpoint_url": s3_endpoint, "region": "us-east-1"})

    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sdk_tour.py"), "--domain", domain,
         "--key", str(data_dir / "admin_ed25519"), "--local-root", str(media_root),
         "--s3-endpoint", s3_endpoint, "--s3-bucket", "tour-bucket"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_PROXY": "127.0.0.1"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "local-media: job" in out and "DONE, items: green.jpg, unit errors: 0" in out
    assert "s3-media: job" in out and "items: blue.png, clip.mp4, unit errors: 0" in out
    assert "layout keys=['0', '1']" in out and "layout keys=['left', 'right']" in out
    assert "'tour.weather': 'sun'" in out
    assert "14 items in folder" in out
