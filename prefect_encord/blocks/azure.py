"""The Azure Blob Storage container behind an Encord Azure cloud integration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, HttpUrl, PrivateAttr, field_validator, model_validator

from prefect_encord.blocks.storage import ENCORD_LOGO_URL, CloudStorageIntegration, bare_endpoint
from prefect_encord.runtime.extras import MissingExtraError

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.identity import ClientSecretCredential, DefaultAzureCredential
    from azure.storage.blob import BlobPrefix, BlobProperties, BlobServiceClient, ContainerClient, ContentSettings
    from prefect_azure import AzureBlobStorageCredentials
except ImportError as error:
    raise MissingExtraError("azure", "EncordAzureIntegration", error.name or "prefect-azure") from error
from prefect_encord.planning.objects import ObjectRecord


class EncordAzureIntegration(CloudStorageIntegration):
    """An Azure Blob Storage container that an Encord cloud integration can read.

    Credentials reuse the prefect-azure block (connection string, service principal, or an account URL
    with `DefaultAzureCredential`). Without one, set `account_url` and `DefaultAzureCredential` applies
    (managed identity, workload identity, environment, Azure CLI). The block talks to the storage
    synchronously, so it builds azure-storage-blob's sync client from the same settings rather than the
    credentials block's async one. Object URLs are `https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`,
    or the same path under the connection string's `BlobEndpoint` (e.g. Azurite).

    Example:
        List the PDFs of a container:
        ```python
        from prefect_azure import AzureBlobStorageCredentials
        from prefect_encord import EncordAzureIntegration

        reports = EncordAzureIntegration(
            container_name="reports",
            integration="My Azure integration",
            credentials=AzureBlobStorageCredentials.load("BLOCK_NAME"),
        )
        for record in reports.list_objects(include=["*.pdf"]):
            print(record.key, record.url)
        ```
    """

    _block_type_name = "Encord Azure Integration"
    _logo_url = HttpUrl(ENCORD_LOGO_URL)
    _documentation_url = HttpUrl(
        "https://docs.encord.com/platform-documentation/General/annotate-data-integrations/"
        "annotate-azure-blob-integration"
    )

    container_name: str = Field(default=..., description="Name of the blob container.")
    credentials: AzureBlobStorageCredentials | None = Field(
        default=None,
        description=(
            "An Azure Blob Storage credentials block. Leave empty to use DefaultAzureCredential with `account_url`."
        ),
    )
    account_url: str | None = Field(
        default=None,
        title="Account URL",
        description=(
            "Blob service URL, e.g. `https://myaccount.blob.core.windows.net`, used with "
            "DefaultAzureCredential when no credentials block is set."
        ),
    )

    _client_cache: Any = PrivateAttr(default=None)

    @field_validator("account_url", mode="after")
    @classmethod
    def _bare_account_url(cls, value: str | None) -> str | None:
        return bare_endpoint(value)

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> EncordAzureIntegration:
        if (self.credentials is None) == (self.account_url is None):
            raise ValueError("set exactly one of credentials, or account_url to connect with DefaultAzureCredential")
        return self

    def _service(self) -> BlobServiceClient:
        """A sync blob service client, built once per block instance."""
        if self._client_cache is None:
            credentials = self.credentials
            if credentials is None:
                assert self.account_url is not None  # checked by the validator
                client = BlobServiceClient(self.account_url, credential=DefaultAzureCredential())
            elif credentials.connection_string is not None:
                client = BlobServiceClient.from_connection_string(credentials.connection_string.get_secret_value())
            elif credentials.client_id is not None:
                assert credentials.account_url and credentials.tenant_id and credentials.client_secret
                principal = ClientSecretCredential(
                    tenant_id=credentials.tenant_id,
                    client_id=credentials.client_id,
                    client_secret=credentials.client_secret.get_secret_value(),
                )
                client = BlobServiceClient(credentials.account_url, credential=principal)
            else:
                assert credentials.account_url is not None  # prefect-azure requires one of the three
                client = BlobServiceClient(credentials.account_url, credential=DefaultAzureCredential())
            self._client_cache = client
        service: BlobServiceClient = self._client_cache
        return service

    def _container(self) -> ContainerClient:
        return self._service().get_container_client(self.container_name)

    @property
    def root_url(self) -> str:
        # The client's URL carries a connection string's SAS token as its query; a registered URL must not.
        scheme, netloc, path, _, _ = urlsplit(self._service().url)
        return urlunsplit((scheme, netloc, f"{path.rstrip('/')}/{self.container_name}/", "", ""))

    def _listing(
        self, prefix: str, page_size: int, delimiter: str | None
    ) -> Iterator[tuple[list[ObjectRecord], list[str]]]:
        container, start = self._container(), prefix or None
        listed = (
            container.list_blobs(name_starts_with=start, results_per_page=page_size)
            if delimiter is None
            else container.walk_blobs(name_starts_with=start, delimiter=delimiter, results_per_page=page_size)
        )
        for page in listed.by_page():
            items = list(page)
            folders = [item.name for item in items if isinstance(item, BlobPrefix)]
            yield [self._record(item) for item in items if not isinstance(item, BlobPrefix)], folders

    def _record(self, blob: BlobProperties) -> ObjectRecord:
        return ObjectRecord(
            key=blob.name, url=self.root_url + quote(blob.name), size=blob.size,
            etag=(blob.etag or "").strip('"') or None, last_modified=blob.last_modified,
        )  # fmt: skip

    def _read(self, key: str, start: int, length: int | None) -> bytes:
        blob = self._container().get_blob_client(key)
        try:
            if start == 0 and length is None:
                return blob.download_blob().readall()
            return blob.download_blob(offset=start, length=length).readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(f"{self.object_url(key)} does not exist") from None
        except HttpResponseError as exc:
            if exc.status_code == 416:
                return b""  # the range starts at or past the end of the blob
            raise

    def _stat(self, key: str) -> ObjectRecord | None:
        try:
            blob = self._container().get_blob_client(key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return ObjectRecord(
            key=key, url=self.object_url(key), size=blob.size, etag=(blob.etag or "").strip('"') or None,
            last_modified=blob.last_modified,
        )  # fmt: skip

    def delete_object(self, key: str) -> None:
        try:
            self._container().get_blob_client(key).delete_blob()
        except ResourceNotFoundError:
            return

    def write_object(self, key: str, data: bytes, content_type: str | None = None) -> ObjectRecord:
        settings = ContentSettings(content_type=content_type) if content_type else None
        result = self._container().get_blob_client(key).upload_blob(data, overwrite=True, content_settings=settings)
        etag = str(result.get("etag") or "").strip('"') or None
        return ObjectRecord(
            key=key, url=self.object_url(key), size=len(data), etag=etag, last_modified=result.get("last_modified")
        )
