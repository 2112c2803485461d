"""The Google Cloud Storage bucket behind an Encord GCP cloud integration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from pydantic import Field, HttpUrl, PrivateAttr, field_validator

from prefect_encord.blocks.storage import ENCORD_LOGO_URL, CloudStorageIntegration, bare_endpoint
from prefect_encord.runtime.extras import MissingExtraError

try:
    from google.api_core import exceptions as google_errors
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.storage import Client as StorageClient
    from prefect_gcp import GcpCredentials
except ImportError as error:
    raise MissingExtraError("gcs", "EncordGcsIntegration", error.name or "prefect-gcp") from error
from prefect_encord.planning.objects import ObjectRecord, folder_prefix

GCS_PUBLIC_ENDPOINT = "https://storage.googleapis.com"


class EncordGcsIntegration(CloudStorageIntegration):
    """A Google Cloud Storage bucket that an Encord cloud integration can read.

    Credentials reuse the prefect-gcp block. Without one, Application Default Credentials apply (workload
    identity, a VM's service account, `gcloud auth application-default login`), except against a custom
    endpoint such as an emulator, where requests are anonymous because emulators take no credentials.
    Object URLs are `https://storage.googleapis.com/BUCKET/KEY`, or `GCS_ENDPOINT/BUCKET/KEY`.

    Example:
        The keys of a bucket's frames, from a saved block (as the Prefect UI's picker passes one to a flow):
        ```python
        from prefect_encord import EncordGcsIntegration

        frames = EncordGcsIntegration.load("BLOCK_NAME")
        keys = [record.key for record in frames.list_objects(include=["*.png"], exclude=["tmp/*"])]
        ```
    """

    _block_type_name = "Encord GCS Integration"
    _logo_url = HttpUrl(ENCORD_LOGO_URL)
    _documentation_url = HttpUrl(
        "https://docs.encord.com/platform-documentation/General/annotate-data-integrations/annotate-gcp-integration"
    )

    bucket: str = Field(default=..., description="Name of the bucket, without `gs://`.")
    credentials: GcpCredentials | None = Field(
        default=None,
        description=(
            "A GCP credentials block for reading and writing the bucket. Leave empty to use Application "
            "Default Credentials (or anonymous access when a custom endpoint is set)."
        ),
    )
    gcs_endpoint: str | None = Field(
        default=None,
        title="GCS Endpoint",
        description="API endpoint of a GCS emulator, e.g. `http://127.0.0.1:4443`. Leave empty for Google Cloud.",
    )
    project: str | None = Field(
        default=None, description="Google Cloud project for the client; defaults to the credentials' project."
    )

    _client_cache: Any = PrivateAttr(default=None)

    @field_validator("gcs_endpoint", mode="after")
    @classmethod
    def _bare_endpoint(cls, value: str | None) -> str | None:
        return bare_endpoint(value)

    def _endpoint(self) -> str:
        return self.gcs_endpoint or GCS_PUBLIC_ENDPOINT

    def _client(self) -> StorageClient:
        """A storage client, built once per block instance."""
        if self._client_cache is None:
            options = ClientOptions(api_endpoint=self._endpoint()) if self.gcs_endpoint else None
            if self.credentials is not None:
                self._client_cache = StorageClient(
                    project=self.project or self.credentials.project,
                    credentials=self.credentials.get_credentials_from_service_account(),
                    client_options=options,
                )
            elif self.gcs_endpoint:
                # Real credentials would make the client fetch OAuth tokens from Google, which an
                # emulator does not need and which retries for minutes offline. "<none>" is the project
                # google-cloud-storage itself gives anonymous clients.
                self._client_cache = StorageClient(
                    project=self.project or "<none>", credentials=AnonymousCredentials(), client_options=options
                )
            else:
                self._client_cache = StorageClient(project=self.project)
        client: StorageClient = self._client_cache
        return client

    @property
    def root_url(self) -> str:
        return f"{self._endpoint()}/{self.bucket}/"

    @property
    def remote_url(self) -> str:
        """``gs://bucket/prefix/`` on Google's service (Encord's documented form); the endpoint's URL otherwise."""
        if self.gcs_endpoint:
            return super().remote_url
        return f"gs://{self.bucket}/{folder_prefix(self.prefix)}"

    def _listing(
        self, prefix: str, page_size: int, delimiter: str | None
    ) -> Iterator[tuple[list[ObjectRecord], list[str]]]:
        root = self.root_url
        blobs = self._client().list_blobs(self.bucket, prefix=prefix or None, page_size=page_size, delimiter=delimiter)
        for page in blobs.pages:
            objects = [
                ObjectRecord(
                    key=blob.name,
                    url=root + quote(blob.name),
                    size=blob.size,
                    etag=blob.etag,
                    last_modified=blob.updated,
                )
                for blob in page
            ]
            yield objects, sorted(getattr(page, "prefixes", ()))

    def _read(self, key: str, start: int, length: int | None) -> bytes:
        blob = self._client().bucket(self.bucket).blob(key)
        end = None if length is None else start + length - 1  # inclusive, as the library wants it
        try:
            data: bytes = blob.download_as_bytes(start=start or None, end=end)
        except google_errors.NotFound:
            raise FileNotFoundError(f"{self.object_url(key)} does not exist") from None
        except google_errors.RequestRangeNotSatisfiable:
            return b""  # the range starts at or past the end of the object
        return data

    def _stat(self, key: str) -> ObjectRecord | None:
        blob = self._client().bucket(self.bucket).get_blob(key)
        if blob is None:
            return None
        return ObjectRecord(
            key=key, url=self.object_url(key), size=blob.size, etag=blob.etag, last_modified=blob.updated
        )

    def delete_object(self, key: str) -> None:
        try:
            self._client().bucket(self.bucket).blob(key).delete()
        except google_errors.NotFound:
            return

    def write_object(self, key: str, data: bytes, content_type: str | None = None) -> ObjectRecord:
        blob = self._client().bucket(self.bucket).blob(key)
        blob.upload_from_string(data, content_type=content_type or "application/octet-stream")
        return ObjectRecord(
            key=key, url=self.object_url(key), size=blob.size, etag=blob.etag, last_modified=blob.updated
        )
