"""Prefect integration for Encord.

The blocks are attributes of the package, imported when first used: the command line's ``--help`` and its
refusals of arguments need neither Prefect nor the Encord SDK, so they answer at once.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect_encord.blocks import EncordCredentials

__version__ = version("prefect-encord")
_CREDENTIALS = "EncordCredentials"
_CLOUD = ("EncordS3Integration", "EncordGcsIntegration", "EncordAzureIntegration")


def __getattr__(name: str) -> Any:
    """A block, imported on first use; a cloud block whose extra is missing raises the ImportError naming it."""
    if name == _CREDENTIALS or name in _CLOUD:
        from prefect_encord import blocks

        return getattr(blocks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The names of the package, with the installed blocks (``prefect block register -m prefect_encord``
    registers the blocks it finds here; a cloud block whose extra is missing is left out)."""
    from prefect_encord import blocks

    installed = [name for name in _CLOUD if name in vars(blocks)]
    return sorted([*globals(), _CREDENTIALS, *installed])


__all__ = [
    "EncordAzureIntegration",
    "EncordCredentials",
    "EncordGcsIntegration",
    "EncordS3Integration",
    "__version__",
]
