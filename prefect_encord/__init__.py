"""Prefect integration for Encord."""

from importlib.metadata import version

from prefect_encord.blocks import EncordCredentials

__version__ = version("prefect-encord")

__all__ = ["EncordCredentials", "__version__"]
