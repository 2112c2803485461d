"""Prefect blocks for Encord."""

from prefect_encord.blocks.credentials import EncordCredentials

__all__ = ["EncordCredentials"]
