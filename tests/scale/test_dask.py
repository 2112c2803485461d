"""The ingest flow, unchanged, on prefect-dask's ``DaskTaskRunner`` over a local Dask cluster (issue #8, "Scale").

The cluster has two worker processes and no dashboard, on 127.0.0.1. The same bucket (50 tiny PNGs on the moto
S3 emulator: 10 scenes of 4 cameras, and 10 single images) is ingested twice into fresh folders of the session
sandbox: once with the flow's default task runner and once with
``ingest.with_options(task_runner=DaskTaskRunner(...))``. Both runs must report the same outcome and leave the
same items and groups behind.

The flow calls its tasks directly, and Prefect runs a directly called task in the flow's own process, whatever
the task runner: only ``.submit()`` and ``.map()`` reach the runner. So the unchanged flow puts no work on the
Dask workers. The scheduler's task stream counts what they ran, and the test prints that count. A second test
submits ``register_bucket`` itself to the workers. It shows that the task's inputs (blocks, names) and its
result travel between processes, and that the items it registers are the same.

The figures (cluster start, wall time of each run, overhead, tasks run on the workers) are printed with ``-s``;
the default runner is timed on its second run, because the first run of a session pays one-off costs.
"""

from __future__ import annotations

import pickle
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from distributed import Client, LocalCluster, get_task_stream
from encord_sandbox import Sandbox
from encord_sandbox.emulators import (
    MOTO_ACCESS_KEY_ID,
    MOTO_REGION,
    MOTO_SECRET_ACCESS_KEY,
    put_s3_objects,
    unique_name,
)
from encord_sandbox.samples import png
from prefect import flow
from prefect.blocks.core import Block
from prefect_aws import MinIOCredentials
from prefect_dask import DaskTaskRunner
from pydantic import SecretStr

from prefect_encord.blocks import load_cloud_block
from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.blocks.storage import CloudStorageIntegration
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.ingest_summary import IngestSummary
from prefect_encord.flows.parameters import CloudSource, GroupingStep
from prefect_encord.planning.outcomes import BucketRegistration
from prefect_encord.state.item_map import ItemMap
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.testing import credentials_block

CREDENTIALS_BLOCK = "scale-dask-sandbox"
SCENES, CAMERAS, SINGLES = 10, 4, 10
OBJECTS = SCENES * CAMERAS + SINGLES
GROUPING = GroupingStep(rule={"kind": "key_pattern", "pattern": r"(?P<key>scene-\d+)_(?P<role>cam\d)"})
FIGURES: dict[str, Any] = {}


def _objects() -> dict[str, bytes]:
    """Key -> a tiny PNG of its own colour: 4 cameras of each scene, then single images."""
    keys = [f"scenes/scene-{s:02d}_cam{c}.png" for s in range(SCENES) for c in range(CAMERAS)]
    keys += [f"singles/img-{i:02d}.png" for i in range(SINGLES)]
    return {key: png(color=(index, 255 - index, 128)) for index, key in enumerate(keys)}


@pytest.fixture(scope="module")
def bucket_block(sandbox: Sandbox, s3_endpoint: str, prefect_harness: None) -> str:
    """A saved EncordS3Integration block over a fresh moto bucket the sandbox can read; returns its slug/name."""
    bucket, integration = unique_name("dask"), f"dask-{uuid.uuid4().hex[:8]}"
    put_s3_objects(s3_endpoint, bucket, _objects())
    sandbox.add_integration(
        integration,
        "s3",
        endpoint_url=s3_endpoint,
        access_key_id=MOTO_ACCESS_KEY_ID,
        secret_access_key=MOTO_SECRET_ACCESS_KEY,
        region=MOTO_REGION,
    )
    block = EncordS3Integration(
        bucket_name=bucket,
        integration=integration,
        endpoint_url=s3_endpoint,
        credentials=MinIOCredentials(
            minio_root_user=MOTO_ACCESS_KEY_ID,
            minio_root_password=SecretStr(MOTO_SECRET_ACCESS_KEY),
            region_name=MOTO_REGION,
        ),
    )
    block.save(bucket, overwrite=True)
    credentials_block(sandbox).save(CREDENTIALS_BLOCK, overwrite=True)
    return f"encord-s3-integration/{bucket}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes, one thread each, no dashboard, everything on loopback."""
    started = time.perf_counter()
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
    ) as local:
        FIGURES["cluster start s"] = round(time.perf_counter() - started, 1)
        yield local


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    yield FIGURES
    print("\nDask figures (issue #8):", ", ".join(f"{name}: {value}" for name, value in FIGURES.items()))


def _on_dask(cluster: LocalCluster) -> Any:
    """A DaskTaskRunner on ``cluster`` (typed Any: prefect-dask's generics do not match ``Flow.with_options``)."""
    return DaskTaskRunner(address=cluster.scheduler_address)


def _timed(name: str, run: Any) -> Any:
    started = time.perf_counter()
    result = run()
    FIGURES[name] = round(time.perf_counter() - started, 1)
    return result


def _ingest_parameters(block: str, runner: str) -> dict[str, Any]:
    return {
        "source": CloudSource(block=load_cloud_block(block)),
        "folder_path": f"scale/dask/{uuid.uuid4().hex[:8]}/{runner}",
        "credentials": EncordCredentials.load(CREDENTIALS_BLOCK),
        "grouping": GROUPING,
    }


def _outcome(summary: IngestSummary) -> tuple[Any, ...]:
    return (
        summary.created,
        summary.already_present,
        summary.failed,
        summary.groups_created,
        sorted(ItemMap.read(summary.item_map).to_dict()),
    )


def test_ingest_unchanged_on_dask_gives_the_default_runners_outcome(
    bucket_block: str, cluster: LocalCluster, sandbox: Sandbox, figures: dict[str, Any]
) -> None:
    # The first flow run of a session pays one-off costs (imports, the API's caches): time the second one.
    _timed("default runner, first run s", lambda: ingest(**_ingest_parameters(bucket_block, "warm-up")))
    default = _timed("default runner s", lambda: ingest(**_ingest_parameters(bucket_block, "default")))
    on_dask = ingest.with_options(task_runner=_on_dask(cluster))
    with Client(cluster) as observer, get_task_stream(observer) as stream:
        distributed = _timed("DaskTaskRunner s", lambda: on_dask(**_ingest_parameters(bucket_block, "dask")))
    figures["overhead s"] = round(figures["DaskTaskRunner s"] - figures["default runner s"], 1)
    figures["ingest tasks run on Dask workers"] = len(stream.data)

    assert (default.created, default.failed, default.groups_created) == (OBJECTS, 0, SCENES)
    assert _outcome(distributed) == _outcome(default)
    assert len(stream.data) >= 2  # registration and data groups ran on Dask workers, not in the flow's process
    client = sandbox.credentials().get_client()
    for summary in (default, distributed):
        folder = client.get_storage_folder(uuid.UUID(summary.folder_uuid))
        items = list(folder.list_items())
        assert len(items) == OBJECTS + SCENES  # the objects, and a data group per scene
        assert len({item.uuid for item in items}) == len(items)


@flow
def register_on_workers(credentials: EncordCredentials, storage_block: str, folder_path: str) -> BucketRegistration:
    """``register_bucket`` submitted to the task runner: the way to put a bucket's registration on a worker."""
    storage = Block.load(storage_block)
    assert isinstance(storage, CloudStorageIntegration)
    folder_uuid = get_or_create_folder(credentials, folder_path)
    registered: BucketRegistration = register_bucket.submit(credentials, storage, folder_uuid).result()
    return registered


def test_register_bucket_submitted_to_dask_workers(
    bucket_block: str, cluster: LocalCluster, figures: dict[str, Any]
) -> None:
    on_dask = register_on_workers.with_options(task_runner=_on_dask(cluster))
    folder_path = f"scale/dask/{uuid.uuid4().hex[:8]}/submitted"
    with Client(cluster) as observer, get_task_stream(observer) as stream:
        registered = _timed(
            "register_bucket.submit on Dask s",
            lambda: on_dask(EncordCredentials.load(CREDENTIALS_BLOCK), bucket_block, folder_path),
        )
    figures["submitted tasks run on Dask workers"] = len(stream.data)

    assert len(stream.data) == 1  # the task ran on a worker, not in the flow's process
    assert len(registered.created) == OBJECTS and not registered.unit_errors and not registered.skipped
    assert {url.rsplit("/", 2)[-2] for url in registered.created} == {"scenes", "singles"}


def test_a_used_storage_block_still_pickles(bucket_block: str) -> None:
    """A block whose SDK client was built (by listing) can still be sent to a worker: the client stays behind."""
    block = Block.load(bucket_block)
    assert isinstance(block, EncordS3Integration)
    assert len(list(block.list_objects())) == OBJECTS
    copy = pickle.loads(pickle.dumps(block))
    assert copy.bucket_name == block.bucket_name and len(list(copy.list_objects())) == OBJECTS
