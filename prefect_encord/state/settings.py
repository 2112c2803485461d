"""Where prefect-encord keeps its local files: Prefect settings read from ``PREFECT_INTEGRATIONS_ENCORD_*``.

Seven directories, each defaulting to a folder of ``$PREFECT_HOME/encord`` but the locks', all best on the machine's own
disk: the job ledger (data jobs in flight, so a retry resumes them and a rollback finishes them), the run ledger
(receipts and each run's item map), the item maps of ``register_bucket`` called on its own, local label
exports (outside any repository, so a deployment's pull step never puts exports in the code), the
locks that keep two runs into one folder from duplicating (see :mod:`prefect_encord.state.locks`; by default in the
machine's temporary directory, shared by every ``PREFECT_HOME`` and user of the machine), and the
inventories that let a re-run send Encord only what changed in a bucket (see :mod:`prefect_encord.state.inventory`),
and the command line's embedded sandbox: one per Prefect home, whatever the current directory, so that every
command of one user (an ingest, its rollback, an export) talks to the same one; and the certificates the
webhook relay checks SNS signatures with. And one switch: whether runs also
meet on the Prefect server's global concurrency limits (``server_locks``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from prefect.settings import get_current_settings
from prefect.settings.base import PrefectBaseSettings, build_settings_config
from pydantic import Field

Directory = Literal["job_ledger", "run_ledger", "item_map", "export", "lock", "inventory", "sandbox", "sns_certificate"]

#: The folder of ``$PREFECT_HOME/encord`` each directory defaults to.
_DEFAULT_NAMES: dict[Directory, str] = {
    "job_ledger": "job-ledger",
    "run_ledger": "runs",
    "item_map": "item-maps",
    "export": "exports",
    "inventory": "inventory",
    "sandbox": "sandbox",
    "sns_certificate": "sns-certificates",
}


class EncordSettings(PrefectBaseSettings):
    """prefect-encord's settings, e.g. ``PREFECT_INTEGRATIONS_ENCORD_JOB_LEDGER_DIRECTORY``."""

    model_config = build_settings_config(("integrations", "encord"))

    job_ledger_directory: Path | None = Field(default=None, description="Directory of the registration job ledger.")
    run_ledger_directory: Path | None = Field(default=None, description="Directory of run receipts and item maps.")
    item_map_directory: Path | None = Field(default=None, description="Directory of item maps written without a path.")
    export_directory: Path | None = Field(default=None, description="Root of local label exports.")
    lock_directory: Path | None = Field(default=None, description="Directory of the locks runs take on folders.")
    inventory_directory: Path | None = Field(
        default=None, description="Directory of the inventories of what each bucket registered."
    )
    sandbox_directory: Path | None = Field(
        default=None, description="Data directory of the command line's embedded sandbox."
    )
    sns_certificate_directory: Path | None = Field(
        default=None, description="Where the webhook relay keeps the certificates Amazon SNS signs messages with."
    )
    server_locks: bool = Field(
        default=True,
        description="Where a Prefect server is configured, make runs into one folder take turns through a Prefect "
        "global concurrency limit too (see prefect_encord.state.locks); false keeps only the machine's own locks.",
    )


def server_locks() -> bool:
    """Whether runs meet on the Prefect server's concurrency limits (read at each call)."""
    return EncordSettings().server_locks


def local_directory(kind: Directory) -> Path:
    """The configured directory of ``kind``, else its folder of ``$PREFECT_HOME/encord`` (read at each call)."""
    configured: Path | None = getattr(EncordSettings(), f"{kind}_directory")
    if configured is not None:
        return configured
    if kind == "lock":  # runs meet on the machine whatever their PREFECT_HOME: their locks must too
        return Path(tempfile.gettempdir()) / "prefect-encord-locks"
    return Path(get_current_settings().home) / "encord" / _DEFAULT_NAMES[kind]
