"""Optional parts of the plugin and the one message that says which extra brings each.

The base install is what every flow needs (Prefect, the Encord SDK, httpx, pydantic). Everything heavy
or cloud-specific sits behind an extra (``pip install 'prefect-encord[EXTRA]'``); code that needs one
imports it through :func:`require` at the moment it is used, before any work is done, so a missing
extra is one clear line rather than a traceback from deep inside a run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: extra -> what it brings (as pyproject.toml's optional dependencies list them).
EXTRAS = {
    "s3": "S3 and S3-compatible buckets (prefect-aws, boto3)",
    "gcs": "Google Cloud Storage buckets (prefect-gcp, google-cloud-storage)",
    "azure": "Azure Blob Storage containers (prefect-azure, azure-storage-blob)",
    "coco": "COCO label exports (numpy, OpenCV, pycocotools, shapely)",
    "parquet": "Parquet metadata manifests (pyarrow)",
    "sandbox": "the offline Encord sandbox (encord-sandbox)",
}


class MissingExtraError(ImportError):
    """A feature's optional dependencies are not installed; the message names the extra to install."""

    def __init__(self, extra: str, purpose: str, missing: str) -> None:
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{extra}' extra ({missing} is not installed; the extra brings "
            f"{EXTRAS[extra]}): pip install 'prefect-encord[{extra}]'"
        )


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(extra, purpose, error.name or module) from error
