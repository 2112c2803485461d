"""Prefect integration for Encord."""

from importlib.metadata import version
from typing import Any

from prefect_encord import blocks
from prefect_encord.blocks import EncordCredentials

__version__ = version("prefect-encord")
# The installed cloud blocks as attributes (`prefect block register -m prefect_encord` registers what it finds).
globals().update({name: cls for name, cls in vars(blocks).items() if name in blocks.CLOUD_BLOCKS})


def __getattr__(name: str) -> Any:
    """A cloud block whose extra is missing: the ImportError naming the extra."""
    if name in blocks.CLOUD_BLOCKS:
        return getattr(blocks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EncordAzureIntegration",
    "EncordCredentials",
    "EncordGcsIntegration",
    "EncordS3Integration",
    "__version__",
]
