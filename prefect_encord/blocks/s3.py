"""The S3 bucket (or S3-compatible store) behind an Encord AWS or S3-compatible cloud integration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from prefect.blocks.abstract import CredentialsBlock
from prefect.utilities.dispatch import lookup_type
from pydantic import Field, HttpUrl, PrivateAttr, field_validator

from prefect_encord.blocks.storage import ENCORD_LOGO_URL, CloudStorageIntegration, bare_endpoint
from prefect_encord.runtime.extras import MissingExtraError

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from botocore.utils import parse_timestamp
    from prefect_aws import AwsCredentials, MinIOCredentials
except ImportError as error:
    raise MissingExtraError("s3", "EncordS3Integration", error.name or "prefect-aws") from error
from prefect_encord.planning.objects import ObjectRecord, as_utc, folder_prefix

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "404"})
_AWS_GLOBAL_REGIONS = frozenset({"us-east-1", "aws-global"})


def _s3_timestamp(value: Any) -> datetime:
    """A timestamp of an S3 response, as botocore's own parser reads it, but S3's ISO 8601 form
    (``2026-12-07T10:00:00.000Z``, every object of a listing) read by the standard library's C parser: botocore's
    (dateutil) is about half the CPU time of listing a bucket."""
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return datetime.fromisoformat(value[:-1] + "+00:00")
        except ValueError:
            pass
    return parse_timestamp(value)


class EncordS3Integration(CloudStorageIntegration):
    """An S3 bucket, or a bucket on an S3-compatible store (MinIO, Wasabi, Cloudflare R2...), that an
    Encord cloud integration can read.

    Credentials reuse prefect-aws blocks. Without one, boto3's default chain applies (environment,
    shared config, IAM role), which is what workers on AWS normally use. Object URLs are what Encord's S3
    integrations expect: `https://BUCKET.s3.REGION.amazonaws.com/KEY` on AWS, or
    `ENDPOINT_URL/BUCKET/KEY` (path style) on another endpoint.

    Example:
        List new images in a bucket and register them with Encord:
        ```python
        from prefect_aws import AwsCredentials
        from prefect_encord import EncordS3Integration

        cams = EncordS3Integration(
            bucket_name="my-bucket",
            prefix="cams/2026",
            integration="My AWS integration",
            credentials=AwsCredentials.load("BLOCK_NAME"),
        )
        for record in cams.list_objects(include=["*.jpg"]):
            print(record.key, record.url)
        ```
    """

    _block_type_name = "Encord S3 Integration"
    _logo_url = HttpUrl(ENCORD_LOGO_URL)
    _documentation_url = HttpUrl(
        "https://docs.encord.com/platform-documentation/General/annotate-data-integrations/annotate-aws-integration"
    )

    bucket_name: str = Field(default=..., description="Name of the bucket.")
    credentials: MinIOCredentials | AwsCredentials | None = Field(
        default=None,
        description=(
            "An AWS or MinIO credentials block for reading and writing the bucket. Leave empty to use "
            "boto3's default credential chain (environment, shared config, IAM role)."
        ),
    )
    endpoint_url: str | None = Field(
        default=None,
        title="Endpoint URL",
        description=(
            "Endpoint of an S3-compatible store or emulator, e.g. `https://minio.example.com`. Overrides any "
            "endpoint set in the credentials' client parameters. Leave empty for AWS."
        ),
    )

    _client_cache: Any = PrivateAttr(default=None)

    @field_validator("credentials", mode="before")
    @classmethod
    def _credentials_block(cls, value: Any) -> Any:
        """Rebuild a saved credentials block from its dict (as prefect-aws's S3Bucket does).

        Pydantic cannot pick the right member of a union of blocks from a dict, and leaves an
        uninitialised block behind; the saved ``block_type_slug`` names the right class.
        """
        if not isinstance(value, dict):
            return value
        value = dict(value)
        slug = value.pop("block_type_slug", None)
        classes: tuple[type[Any], ...] = (
            (lookup_type(CredentialsBlock, dispatch_key=slug),) if slug else (MinIOCredentials, AwsCredentials)
        )
        for credentials_class in classes:
            try:
                return credentials_class(**value)
            except ValueError:
                continue
        raise ValueError(f"the credentials match none of {', '.join(c.__name__ for c in classes)}")

    @field_validator("endpoint_url", mode="after")
    @classmethod
    def _bare_endpoint(cls, value: str | None) -> str | None:
        return bare_endpoint(value)

    def _endpoint(self) -> str | None:
        if self.endpoint_url:
            return self.endpoint_url
        if self.credentials is not None:
            return bare_endpoint(self.credentials.aws_client_parameters.endpoint_url)
        return None

    def _client(self) -> Any:
        """A boto3 S3 client, built once per block instance (boto3 clients are thread-safe)."""
        if self._client_cache is None:
            credentials = self.credentials
            session = credentials.get_boto3_session() if credentials is not None else boto3.session.Session()
            params = credentials.aws_client_parameters.get_params_override() if credentials is not None else {}
            endpoint = self._endpoint()
            if endpoint:
                params["endpoint_url"] = endpoint
            params.setdefault(
                "config",
                Config(
                    signature_version="s3v4",
                    # Stores on an IP or a private host name only understand path-style requests.
                    s3={"addressing_style": "path" if endpoint else "auto"},
                    retries={"mode": "standard"},
                    # Lookups, sidecar reads and a fanned-out listing share the client: 10 (the default) is too few.
                    max_pool_connections=32,
                ),
            )
            session._session.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=_s3_timestamp
            )
            self._client_cache = session.client("s3", **params)
        return self._client_cache

    @property
    def root_url(self) -> str:
        endpoint = self._endpoint()
        if endpoint:
            return f"{endpoint}/{self.bucket_name}/"
        region = self._client().meta.region_name
        host = "s3.amazonaws.com" if region in _AWS_GLOBAL_REGIONS or not region else f"s3.{region}.amazonaws.com"
        # Virtual-hosted URLs of dotted bucket names fail TLS checks (*.s3.amazonaws.com has one label).
        if "." in self.bucket_name:
            return f"https://{host}/{self.bucket_name}/"
        return f"https://{self.bucket_name}.{host}/"

    @property
    def remote_url(self) -> str:
        """``s3://bucket/prefix/`` on AWS (Encord's documented form); the endpoint's URL on an S3-compatible one."""
        if self._endpoint():
            return super().remote_url
        return f"s3://{self.bucket_name}/{folder_prefix(self.prefix)}"

    def _listing(
        self, prefix: str, page_size: int, delimiter: str | None
    ) -> Iterator[tuple[list[ObjectRecord], list[str]]]:
        root = self.root_url
        paginator = self._client().get_paginator("list_objects_v2")
        arguments: dict[str, Any] = {
            "Bucket": self.bucket_name,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": page_size},
        }
        if delimiter is not None:
            arguments["Delimiter"] = delimiter
        for page in self._naming_the_bucket(paginator.paginate(**arguments)):
            objects = [
                ObjectRecord(
                    key=item["Key"],
                    url=root + quote(item["Key"]),
                    size=item.get("Size"),
                    etag=item.get("ETag", "").strip('"') or None,
                    last_modified=as_utc(item["LastModified"]) if "LastModified" in item else None,
                )
                for item in page.get("Contents", [])
            ]
            yield objects, [common["Prefix"] for common in page.get("CommonPrefixes", [])]

    def _naming_the_bucket(self, pages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        try:
            yield from pages
        except ClientError as exc:
            self._raise_if_no_bucket(exc)
            raise

    def _raise_if_no_bucket(self, exc: ClientError) -> None:
        """boto3 says "The specified bucket does not exist" without saying which; this says which."""
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise FileNotFoundError(f"bucket {self.bucket_name!r} does not exist ({self.root_url})") from None

    def _read(self, key: str, start: int, length: int | None) -> bytes:
        request: dict[str, Any] = {"Bucket": self.bucket_name, "Key": key}
        if length is not None:
            request["Range"] = f"bytes={start}-{start + length - 1}"
        elif start:
            request["Range"] = f"bytes={start}-"
        try:
            response = self._client().get_object(**request)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND:
                raise FileNotFoundError(f"{self.object_url(key)} does not exist") from None
            if code == "InvalidRange":
                return b""  # the range starts at or past the end of the object
            raise
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def _stat(self, key: str) -> ObjectRecord | None:
        try:
            head = self._client().head_object(Bucket=self.bucket_name, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            self._raise_if_no_bucket(exc)
            raise
        return ObjectRecord(
            key=key, url=self.object_url(key), size=head.get("ContentLength"),
            etag=str(head.get("ETag", "")).strip('"') or None,
            last_modified=as_utc(head["LastModified"]) if "LastModified" in head else None,
        )  # fmt: skip

    def delete_object(self, key: str) -> None:
        try:
            self._client().delete_object(Bucket=self.bucket_name, Key=key)  # S3 answers 204 for a missing key too
        except ClientError as exc:
            self._raise_if_no_bucket(exc)
            raise

    def write_object(self, key: str, data: bytes, content_type: str | None = None) -> ObjectRecord:
        request: dict[str, Any] = {"Bucket": self.bucket_name, "Key": key, "Body": data}
        if content_type:
            request["ContentType"] = content_type
        try:
            response = self._client().put_object(**request)
        except ClientError as exc:
            self._raise_if_no_bucket(exc)
            raise
        etag = str(response.get("ETag", "")).strip('"') or None
        return ObjectRecord(key=key, url=self.object_url(key), size=len(data), etag=etag)
