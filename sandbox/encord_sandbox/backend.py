"""One sandbox's backend: its database (each area's tables and cascades), blobs and job runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from encord_sandbox.blobs import BlobStore
from encord_sandbox.chaos import Chaos, ChaosConfig
from encord_sandbox.datasets import models as datasets
from encord_sandbox.db import STORE_FILE_NAME, Database
from encord_sandbox.jobs import models as job_models
from encord_sandbox.jobs.runner import JobRunner
from encord_sandbox.labels import models as labels
from encord_sandbox.organisation import access, metadata_schema
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.projects import models as projects
from encord_sandbox.storage import models as storage_models
from encord_sandbox.syncs import models as sync_models

#: Each area's tables, created in this order (a later area's tables refer to earlier ones).
AREA_TABLES = (
    organisation_models.DDL,
    storage_models.DDL,
    metadata_schema.DDL,
    job_models.DDL,
    access.DDL,
    datasets.DDL,
    projects.DDL,
    labels.DDL,
    sync_models.DDL,
)


def open_database(path: Path) -> Database:
    """The sandbox's database with every area's tables and cascades in place."""
    store = Database(path)
    for ddl in AREA_TABLES:
        store.ensure_schema(ddl)
    datasets.register_cascades(store)
    labels.register_cascades(store)
    return store


class Backend:
    """Everything a request may touch: state, blobs and the job runner of one data directory."""

    def __init__(
        self, data_dir: Path, job_workers: int = 4, latency_ms: float = 0.0, chaos: ChaosConfig | None = None
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.latency_seconds = latency_ms / 1000
        self.chaos = Chaos(chaos) if chaos is not None else None
        self.store = open_database(data_dir / STORE_FILE_NAME)
        self.blobs = BlobStore(data_dir / "blobs", BlobStore.load_or_create_secret(data_dir / "url-signing.secret"))
        self.runner = JobRunner(self.store, self.blobs, self.metadata_schema, workers=job_workers, chaos=self.chaos)

    def metadata_schema(self) -> dict[str, Any] | None:
        row = metadata_schema.stored(self.store, "v2")
        return json.loads(row["body"]) if row else None

    def close(self) -> None:
        self.runner.shutdown()
        self.store.close()
