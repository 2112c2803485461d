"""Prefect integration for Encord."""

from importlib.metadata import version

from prefect_encord.blocks import (
    EncordAzureIntegration,
    EncordCredentials,
    EncordGcsIntegration,
    EncordS3Integration,
)

__version__ = version("prefect-encord")

__all__ = [
    "EncordAzureIntegration",
    "EncordCredentials",
    "EncordGcsIntegration",
    "EncordS3Integration",
    "__version__",
]
