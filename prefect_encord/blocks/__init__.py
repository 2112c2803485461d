"""Prefect blocks for Encord.

``EncordCredentials`` is always here. Each cloud block needs its extra (``s3``, ``gcs``, ``azure``: the
prefect-aws/gcp/azure credential blocks it reuses and the storage client); a block whose extra is
missing is simply not registered, and using it raises one ImportError naming the extra, while the
other blocks keep working.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Union, cast

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.runtime.extras import MissingExtraError

if TYPE_CHECKING:
    from prefect_encord.blocks.azure import EncordAzureIntegration
    from prefect_encord.blocks.gcs import EncordGcsIntegration
    from prefect_encord.blocks.s3 import EncordS3Integration

#: class name -> (module, block type slug) of each cloud block.
CLOUD_BLOCKS = {
    "EncordS3Integration": ("prefect_encord.blocks.s3", "encord-s3-integration"),
    "EncordGcsIntegration": ("prefect_encord.blocks.gcs", "encord-gcs-integration"),
    "EncordAzureIntegration": ("prefect_encord.blocks.azure", "encord-azure-integration"),
}
_missing: dict[str, MissingExtraError] = {}
for _name, (_module, _slug) in CLOUD_BLOCKS.items():
    try:  # importing a block module registers its block type with Prefect
        globals()[_name] = getattr(importlib.import_module(_module), _name)
    except MissingExtraError as _error:
        _missing[_name] = _error


if TYPE_CHECKING:
    CloudBlock = EncordS3Integration | EncordGcsIntegration | EncordAzureIntegration
else:
    _available = tuple(globals()[name] for name in CLOUD_BLOCKS if name not in _missing)
    if _available:
        CloudBlock = Union[_available]  # noqa: UP007 (a union built from a tuple of classes)
    else:
        from prefect_encord.blocks.storage import CloudStorageIntegration as CloudBlock
"""The type of a flow parameter that takes a saved cloud integration block: a union of the cloud blocks
whose extras are installed, which the Prefect UI renders as a choice of block pickers (one per type)."""


def __getattr__(name: str) -> Any:
    if name in _missing:
        raise _missing[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_cloud_block(reference: str) -> CloudBlock:
    """Load a saved cloud integration block by ``'block-type-slug/name'``, e.g. ``encord-s3-integration/raw``.

    Raises:
        ValueError: If ``reference`` is not ``slug/name``.
        MissingExtraError: If the block's extra is not installed here.
        TypeError: If the block is not one of the cloud integration blocks.
    """
    from prefect.blocks.core import Block

    from prefect_encord.blocks.storage import CloudStorageIntegration

    slug, _, name = reference.partition("/")
    if not slug or not name:
        raise ValueError(f"cloud block {reference!r} must be 'block-type-slug/name', e.g. 'encord-s3-integration/raw'")
    for class_name, (_, block_slug) in CLOUD_BLOCKS.items():
        if slug == block_slug and class_name in _missing:
            raise _missing[class_name]
    block = Block.load(reference)
    if not isinstance(block, CloudStorageIntegration):
        raise TypeError(f"block {reference!r} is a {type(block).__name__}, not a cloud integration block")
    return cast("CloudBlock", block)


__all__ = [
    "CLOUD_BLOCKS",
    "CloudBlock",
    "EncordAzureIntegration",
    "EncordCredentials",
    "EncordGcsIntegration",
    "EncordS3Integration",
    "load_cloud_block",
]
