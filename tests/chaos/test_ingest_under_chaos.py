"""Thousands of files through the ingest flow against a sandbox in chaos mode: one item each, none twice.

The issue's figure is taken at 10,000 files (``PREFECT_ENCORD_TEST_FILES=10000``); the suite runs 3,000, three
jobs, which meet every kind of fault as surely (the faults are drawn per request, and rates are set so).

The sandbox runs in its own process with every fault of chaos mode turned on along the registration path
(job starts, long polls, bulk lookups, the folder and integration reads), and five corrupt objects sit
among the good ones. The run must end with one item per good object, the five failures in its
artifacts, and the chaos counters showing that every kind of fault was met and survived.

Folder creation is left out of the chaos routes: the SDK never retries that POST and ``get_or_create_folder``
does not either (a known gap, outside the registration path), so a refused creation would fail the flow.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from encord_sandbox.chaos import STATS_PATH, ChaosConfig
from encord_sandbox.emulators import MOTO_ACCESS_KEY_ID, MOTO_REGION, MOTO_SECRET_ACCESS_KEY
from encord_sandbox.process import sandbox_process
from encord_sandbox.samples import png
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect_aws import MinIOCredentials
from pydantic import SecretStr

from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.parameters import CloudSource
from tests.chaos.conftest import prepare_served_sandbox, served_credentials

GOOD, CORRUPT = int(os.environ.get("PREFECT_ENCORD_TEST_FILES", "3000")), 5
CHAOS = ChaosConfig(
    seed=3,
    error_rate=0.15,
    throttle_rate=0.15,
    retry_after_seconds=1,
    drop_rate=0.15,
    slow_rate=0.15,
    slow_seconds=1.0,
    unit_failure_rate=0.01,
    poll_timeout_rate=0.3,
    routes=(
        r"^POST .*/data-upload-jobs$",
        r"^GET .*/data-upload-jobs/\{id\}$",
        r"^POST /v2/public/storage/items/get-bulk$",
        r"^GET /v2/public/storage/folders/\{id\}$",
        r"^GET /v2/public/cloud-integrations$",
    ),
)


def fill_bucket(bucket: str) -> dict[str, bytes]:
    """Distinct tiny PNGs and 5 corrupt objects, straight into moto's backend (no HTTP: about a second)."""
    objects = {f"img-{i:05d}.png": png(color=(i & 255, (i >> 8) & 255, 7)) for i in range(GOOD)}
    objects.update({f"corrupt-{i}.png": b"not an image" for i in range(CORRUPT)})
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, MOTO_REGION)
    for key, data in objects.items():
        backend.put_object(bucket, key, data)
    return objects


@pytest.mark.timeout(600)
def test_thousands_of_files_under_chaos_become_one_item_each(
    prefect_harness: None, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY", str(tmp_path / "job-ledger"))
    bucket = f"chaos-{uuid.uuid4().hex[:12]}"
    fill_bucket(bucket)
    prepare_served_sandbox(tmp_path / "sandbox", s3_endpoint, "chaos-s3")
    with sandbox_process(tmp_path / "sandbox", chaos=CHAOS, job_workers=8) as domain:
        credentials = served_credentials(tmp_path / "sandbox", domain)
        credentials.save("chaos-10k", overwrite=True)
        minio = MinIOCredentials(
            minio_root_user=MOTO_ACCESS_KEY_ID,
            minio_root_password=SecretStr(MOTO_SECRET_ACCESS_KEY),
            region_name=MOTO_REGION,
        )
        block = EncordS3Integration(bucket_name=bucket, integration="chaos-s3", endpoint_url=s3_endpoint,
                                    credentials=minio)  # fmt: skip
        block.save("chaos-10k", overwrite=True)
        started = time.perf_counter()

        summary = ingest(CloudSource(block=block), f"chaos/10k-{bucket}", credentials=credentials, max_failures=CORRUPT)

        elapsed = time.perf_counter() - started
        stats = httpx.get(domain + STATS_PATH).json()
        folder = credentials.get_client().get_storage_folder(uuid.UUID(summary.folder_uuid))
        urls = Counter(item.url for item in folder.list_items(page_size=1000))

    assert (summary.created, summary.already_present, summary.failed) == (GOOD, 0, CORRUPT)
    assert len(urls) == GOOD and set(urls.values()) == {1}
    assert all("/img-" in str(url) for url in urls)
    failed = _failed_rows()
    assert sorted(row["subject"].rsplit("/", 1)[1] for row in failed) == [f"corrupt-{i}.png" for i in range(CORRUPT)]
    assert all("not a readable image" in row["detail"] for row in failed)
    assert set(stats["faults"]) == {"error", "throttle", "drop", "lost_answer", "slow", "unit_failure", "poll_timeout"}
    print(f"\n{GOOD:,} files under chaos in {elapsed:.0f} s: {stats['requests']} requests, faults {stats['faults']}")


def _failed_rows() -> list[dict[str, str]]:
    """The failures the latest ingest run published in its outcomes table artifact."""
    with get_client(sync_client=True) as prefect:
        (table,) = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="encord-ingest-%-outcomes")),
            sort=ArtifactSort.CREATED_DESC, limit=1,
        )  # fmt: skip
    return [row for row in json.loads(str(table.data)) if row["status"] == "failed"]
