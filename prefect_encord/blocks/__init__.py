"""Prefect blocks for Encord."""

from prefect_encord.blocks.azure import EncordAzureIntegration
from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.gcs import EncordGcsIntegration
from prefect_encord.blocks.s3 import EncordS3Integration

__all__ = ["EncordAzureIntegration", "EncordCredentials", "EncordGcsIntegration", "EncordS3Integration"]
