"""A fresh bucket on one of the emulators, wrapped in its Encord integration block, for block and task tests.

Tests are parametrised over :data:`CLOUDS` and call :func:`new_bucket` with their ``request``: only the
emulators a test actually uses get started (through the session fixtures of ``encord_sandbox.pytest_plugin``).
:func:`add_sandbox_integration` gives the sandbox an integration reading the same emulator, the way an
Encord cloud integration reads the user's bucket.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pytest
from encord_sandbox.emulators import (
    MOTO_ACCESS_KEY_ID,
    MOTO_REGION,
    MOTO_SECRET_ACCESS_KEY,
    put_azure_blobs,
    put_gcs_objects,
    put_s3_objects,
    unique_name,
)
from encord_sandbox.server import Sandbox
from prefect_aws import MinIOCredentials
from prefect_azure import AzureBlobStorageCredentials

from prefect_encord import EncordAzureIntegration, EncordGcsIntegration, EncordS3Integration
from prefect_encord.blocks.storage import CloudStorageIntegration

CLOUDS = ("s3", "gcs", "azure")


def new_bucket(
    cloud: str,
    request: pytest.FixtureRequest,
    objects: Mapping[str, bytes],
    integration: str = "unused",
    prefix: str = "",
) -> CloudStorageIntegration:
    """Create a uniquely named bucket holding ``objects`` and return its block."""
    name = unique_name("b")
    if cloud == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        put_s3_objects(endpoint, name, objects)
        credentials = MinIOCredentials(
            minio_root_user=MOTO_ACCESS_KEY_ID, minio_root_password=MOTO_SECRET_ACCESS_KEY, region_name=MOTO_REGION
        )
        return EncordS3Integration(
            bucket_name=name, integration=integration, prefix=prefix, endpoint_url=endpoint, credentials=credentials
        )
    if cloud == "gcs":
        endpoint = request.getfixturevalue("gcs_endpoint")
        put_gcs_objects(endpoint, name, objects)
        return EncordGcsIntegration(bucket=name, integration=integration, prefix=prefix, gcs_endpoint=endpoint)
    connection_string = request.getfixturevalue("azure_connection_string")
    put_azure_blobs(connection_string, name, objects)
    return EncordAzureIntegration(
        container_name=name,
        integration=integration,
        prefix=prefix,
        credentials=AzureBlobStorageCredentials(connection_string=connection_string),
    )


def add_sandbox_integration(sandbox: Sandbox, cloud: str, request: pytest.FixtureRequest) -> str:
    """Give the sandbox an integration reading ``cloud``'s emulator; returns its (unique) title."""
    title = f"{cloud}-{uuid.uuid4().hex[:8]}"
    if cloud == "s3":
        sandbox.add_integration(
            title,
            "s3",
            endpoint_url=request.getfixturevalue("s3_endpoint"),
            access_key_id=MOTO_ACCESS_KEY_ID,
            secret_access_key=MOTO_SECRET_ACCESS_KEY,
            region=MOTO_REGION,
        )
    elif cloud == "gcs":
        sandbox.add_integration(title, "gcs", gcs_endpoint=request.getfixturevalue("gcs_endpoint"))
    else:
        sandbox.add_integration(
            title, "azure", azure_connection_string=request.getfixturevalue("azure_connection_string")
        )
    return title
