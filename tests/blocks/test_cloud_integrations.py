"""The S3, GCS and Azure integration blocks against real emulators: listing, filters, reads, writes, URLs."""

from __future__ import annotations

import inspect
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from encord import EncordUserClient
from encord_sandbox.emulators import AZURITE_ACCOUNT_KEY
from encord_sandbox.server import Sandbox
from prefect.blocks.core import Block
from prefect_aws import AwsCredentials, MinIOCredentials
from prefect_azure import AzureBlobStorageCredentials
from prefect_gcp import GcpCredentials

import prefect_encord
from prefect_encord import EncordAzureIntegration, EncordGcsIntegration, EncordS3Integration
from prefect_encord.blocks.storage import IntegrationNotFound, resolve_integration
from tests.integration_buckets import CLOUDS, new_bucket

OBJECTS = {
    "cams/front/1.png": b"one",
    "cams/front/2.png": b"two!",
    "cams/front/notes.txt": b"notes",
    "cams/rear/1.png": b"three",
    "cams/rear/tmp/x.png": b"scratch",
    "cams-old/1.png": b"not under the prefix",
    "root.png": b"nor this",
}
UNDER_CAMS = sorted(k for k in OBJECTS if k.startswith("cams/"))


@pytest.mark.parametrize("cloud", CLOUDS)
def test_listing_streams_pages_of_records_under_the_prefix_folder(cloud: str, request: pytest.FixtureRequest) -> None:
    block = new_bucket(cloud, request, OBJECTS, prefix="cams")
    pages = list(block.list_object_pages(page_size=2))
    assert [len(page) for page in pages] == [2, 2, 1]  # more than one page, and nothing from cams-old/
    records = [record for page in pages for record in page]
    assert [r.key for r in records] == UNDER_CAMS
    for record in records:
        assert record.url == block.object_url(record.key) and record.url.startswith(block.root_url)
        assert record.size == len(OBJECTS[record.key])
        assert record.etag
        assert record.last_modified is not None and record.last_modified.utcoffset() == timedelta(0)
    assert [r.key for r in block.list_objects(page_size=3)] == UNDER_CAMS


@pytest.mark.parametrize("cloud", CLOUDS)
def test_include_and_exclude_patterns_apply_to_keys_relative_to_the_prefix(
    cloud: str, request: pytest.FixtureRequest
) -> None:
    block = new_bucket(cloud, request, OBJECTS, prefix="cams/")
    selected = block.list_objects(include=["*.png"], exclude=["*/tmp/*"], page_size=2)
    assert [r.key for r in selected] == ["cams/front/1.png", "cams/front/2.png", "cams/rear/1.png"]
    assert [r.key for r in block.list_objects(include=["front/*"])] == [
        "cams/front/1.png",
        "cams/front/2.png",
        "cams/front/notes.txt",
    ]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_modified_since_lists_only_what_changed_after_the_watermark(cloud: str, request: pytest.FixtureRequest) -> None:
    block = new_bucket(cloud, request, {"old/a.png": b"a", "old/b.png": b"b"})
    time.sleep(1.1)  # S3 and Azure keep modification times to the second
    block.write_object("new/c.png", b"c")
    (new,) = [r for r in block.list_objects() if r.key == "new/c.png"]
    assert new.last_modified is not None
    assert [r.key for r in block.list_objects(modified_since=new.last_modified)] == ["new/c.png"]
    assert len(list(block.list_objects(modified_since=new.last_modified - timedelta(days=1)))) == 3
    assert list(block.list_objects(modified_since=datetime.now(timezone.utc) + timedelta(hours=1))) == []


@pytest.mark.parametrize("cloud", CLOUDS)
def test_read_whole_objects_and_byte_ranges(cloud: str, request: pytest.FixtureRequest) -> None:
    block = new_bucket(cloud, request, {"data/bytes.bin": bytes(range(100))})
    assert block.read_object("data/bytes.bin") == bytes(range(100))
    assert block.read_object("data/bytes.bin", 10, 5) == bytes(range(10, 15))
    assert block.read_object("data/bytes.bin", 0, 1000) == bytes(range(100))
    assert block.read_object("data/bytes.bin", 95) == bytes(range(95, 100))
    assert block.read_object("data/bytes.bin", 100, 10) == b""
    with pytest.raises(FileNotFoundError, match="does not exist") as missing:
        block.read_object("data/nope.bin")
    assert block.object_url("data/nope.bin") in str(missing.value)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_written_objects_can_be_read_and_listed(cloud: str, request: pytest.FixtureRequest) -> None:
    block = new_bucket(cloud, request, {})
    written = block.write_object("exports/labels v1.json", b'{"labels": []}', content_type="application/json")
    assert (written.key, written.size, written.url) == (
        "exports/labels v1.json",
        14,
        block.object_url("exports/labels v1.json"),
    )
    assert written.etag
    assert block.read_object("exports/labels v1.json") == b'{"labels": []}'
    block.write_object("exports/labels v1.json", b"[]")  # replaces
    assert block.read_object("exports/labels v1.json") == b"[]"
    assert [r.key for r in block.list_objects()] == ["exports/labels v1.json"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_deleted_objects_are_gone_and_deleting_again_is_no_error(cloud: str, request: pytest.FixtureRequest) -> None:
    block = new_bucket(cloud, request, {"labels/a.json": b"{}", "labels/b.json": b"{}"})
    block.delete_object("labels/a.json")
    block.delete_object("labels/a.json")  # already gone
    with pytest.raises(FileNotFoundError):
        block.read_object("labels/a.json")
    assert [r.key for r in block.list_objects()] == ["labels/b.json"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_named_objects_are_described_as_a_listing_describes_them(cloud: str, request: pytest.FixtureRequest) -> None:
    block = new_bucket(cloud, request, {"cams/a b.png": b"png-a", "cams/c.mp4": b"mp4", "other/d.png": b"d"})
    listed = {record.key: record for record in block.list_objects()}
    stated = dict(block.stat_objects(["cams/c.mp4", "cams/gone.png", "cams/a b.png"]))
    assert list(stated) == ["cams/c.mp4", "cams/gone.png", "cams/a b.png"]  # in the order asked
    assert stated["cams/gone.png"] is None
    for key in ("cams/c.mp4", "cams/a b.png"):
        record = stated[key]
        assert record is not None
        assert (record.url, record.size, record.etag) == (listed[key].url, listed[key].size, listed[key].etag)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_fanned_out_listing_lists_what_a_plain_one_does(cloud: str, request: pytest.FixtureRequest) -> None:
    objects = {f"{folder}/{n}.png": b"x" * (n + 1) for folder in ("a", "b", "c d", "e/f") for n in range(3)}
    block = new_bucket(cloud, request, {**objects, "top.png": b"t", "top.txt": b"t", "z/deep/er/x.png": b"x"})
    for include, exclude in [((), ()), (("*.png",), ("b/*",))]:
        plain = [(r.key, r.url, r.size, r.etag) for r in block.list_objects(include, exclude)]
        fanned = [(r.key, r.url, r.size, r.etag) for r in block.list_objects(include, exclude, fan_out=3)]
        assert sorted(fanned) == sorted(plain) and len(fanned) == len(set(fanned))
    assert len(plain) == 11  # 15 objects, less top.txt and b/'s three


def test_directory_markers_are_not_listed(request: pytest.FixtureRequest) -> None:
    block = new_bucket("s3", request, {"folder/": b"", "folder/a.png": b"a"})
    assert [r.key for r in block.list_objects()] == ["folder/a.png"]


def test_urls_take_the_form_each_integration_expects() -> None:
    aws = EncordS3Integration(bucket_name="cams", integration="i", credentials=AwsCredentials(region_name="eu-west-2"))
    assert aws.object_url("a b/c#1.png") == "https://cams.s3.eu-west-2.amazonaws.com/a%20b/c%231.png"
    dotted = EncordS3Integration(
        bucket_name="my.cams", integration="i", credentials=AwsCredentials(region_name="us-east-1")
    )
    assert dotted.root_url == "https://s3.amazonaws.com/my.cams/"
    minio = EncordS3Integration(bucket_name="cams", integration="i", endpoint_url="https://minio.example.com/")
    assert minio.object_url("x.png") == "https://minio.example.com/cams/x.png"
    via_client_parameters = EncordS3Integration(
        bucket_name="cams",
        integration="i",
        credentials=MinIOCredentials(
            minio_root_user="u",
            minio_root_password="p",
            aws_client_parameters={"endpoint_url": "http://10.0.0.5:9000"},
        ),
    )
    assert via_client_parameters.root_url == "http://10.0.0.5:9000/cams/"
    assert EncordGcsIntegration(bucket="cams", integration="i").object_url("a b.png") == (
        "https://storage.googleapis.com/cams/a%20b.png"
    )
    azure = EncordAzureIntegration(
        container_name="cams", integration="i", account_url="https://acct.blob.core.windows.net"
    )
    assert azure.object_url("a b.png") == "https://acct.blob.core.windows.net/cams/a%20b.png"


def test_an_azure_sas_token_never_reaches_an_object_url() -> None:
    connection_string = (
        "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2024-05-04&sig=SECRETSIG"
    )
    block = EncordAzureIntegration(
        container_name="cams",
        integration="i",
        credentials=AzureBlobStorageCredentials(connection_string=connection_string),
    )
    assert block.object_url("x.png") == "https://acct.blob.core.windows.net/cams/x.png"


def _service_account_info() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "kid",
        "private_key": pem,
        "client_email": "sa@proj.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def test_secrets_stay_out_of_reprs_and_serialised_blocks() -> None:
    info = _service_account_info()
    blocks = [
        EncordS3Integration(
            bucket_name="b",
            integration="i",
            credentials=AwsCredentials(aws_access_key_id="AKIA", aws_secret_access_key="aws-secret-value"),
        ),
        EncordGcsIntegration(bucket="b", integration="i", credentials=GcpCredentials(service_account_info=info)),
        EncordAzureIntegration(
            container_name="c",
            integration="i",
            credentials=AzureBlobStorageCredentials(
                connection_string=f"AccountName=devstoreaccount1;AccountKey={AZURITE_ACCOUNT_KEY}"
            ),
        ),
    ]
    for block in blocks:
        for shown in (repr(block), str(block), block.model_dump_json()):
            for secret in ("aws-secret-value", "PRIVATE KEY", AZURITE_ACCOUNT_KEY):
                assert secret not in shown


def test_the_gcs_block_uses_the_credentials_blocks_service_account() -> None:
    block = EncordGcsIntegration(
        bucket="b", integration="i", credentials=GcpCredentials(service_account_info=_service_account_info())
    )
    client = block._client()  # builds the client offline: no token is fetched until a request
    assert client.project == "proj"
    assert client._credentials.service_account_email == "sa@proj.iam.gserviceaccount.com"


def test_saved_s3_credentials_come_back_as_the_right_block_type() -> None:
    aws = EncordS3Integration.model_validate(
        {
            "bucket_name": "b",
            "integration": "i",
            "credentials": {"block_type_slug": "aws-credentials", "region_name": "eu-west-1"},
        }
    )
    assert isinstance(aws.credentials, AwsCredentials) and aws.credentials.region_name == "eu-west-1"
    minio = EncordS3Integration.model_validate(
        {"bucket_name": "b", "integration": "i", "credentials": {"minio_root_user": "u", "minio_root_password": "p"}}
    )
    assert isinstance(minio.credentials, MinIOCredentials)


def test_the_azure_block_needs_exactly_one_way_to_connect() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        EncordAzureIntegration(container_name="c", integration="i")
    with pytest.raises(ValueError, match="exactly one"):
        EncordAzureIntegration(
            container_name="c",
            integration="i",
            account_url="https://a.blob.core.windows.net",
            credentials=AzureBlobStorageCredentials(account_url="https://a.blob.core.windows.net"),
        )


def test_integrations_resolve_by_title_or_uuid_with_clear_errors(sandbox: Sandbox, client: EncordUserClient) -> None:
    title = f"cams-{uuid.uuid4().hex[:6]}"
    integration_id = sandbox.add_integration(title, "local", root="/tmp")
    assert resolve_integration(client, title) == integration_id
    assert resolve_integration(client, integration_id.upper()) == integration_id
    with pytest.raises(IntegrationNotFound, match=f"'no-such-{title}'.*can use:.*'{title}'"):
        resolve_integration(client, f"no-such-{title}")
    twin = sandbox.add_integration(title, "local", root="/tmp")
    with pytest.raises(IntegrationNotFound, match=f"2 Encord cloud integrations are titled '{title}'") as ambiguous:
        resolve_integration(client, title)
    assert integration_id in str(ambiguous.value) and twin in str(ambiguous.value)
    assert resolve_integration(client, twin) == twin


def test_blocks_are_exported_for_block_registration() -> None:
    exported = {cls for _, cls in inspect.getmembers(prefect_encord) if Block.is_block_class(cls)}
    assert {EncordS3Integration, EncordGcsIntegration, EncordAzureIntegration} <= exported
    for block, name in [
        (EncordS3Integration, "Encord S3 Integration"),
        (EncordGcsIntegration, "Encord GCS Integration"),
        (EncordAzureIntegration, "Encord Azure Integration"),
    ]:
        assert block.get_block_type_name() == name
        assert block.get_code_example() and "list_objects" in (block.get_code_example() or "")
        assert block._documentation_url is not None and block._logo_url is not None
        schema = block.model_json_schema()
        assert all(prop.get("description") for prop in schema["properties"].values())


def test_invalid_byte_ranges_are_refused_before_any_request() -> None:
    block = EncordGcsIntegration(bucket="b", integration="i", gcs_endpoint="http://127.0.0.1:9")
    for start, length in [(-1, None), (0, 0), (5, -2)]:
        with pytest.raises(ValueError, match="invalid byte range"):
            block.read_object("k", start, length)


def test_endpoints_with_credentials_in_them_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match="must not carry credentials") as refused:
        EncordS3Integration(bucket_name="b", integration="i", endpoint_url="https://me:hunter2@minio.local")
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match="http"):
        EncordGcsIntegration(bucket="b", integration="i", gcs_endpoint="ftp://gcs.local")
    with pytest.raises(ValueError, match="query"):
        EncordAzureIntegration(container_name="c", integration="i", account_url="https://a.blob.core.windows.net?sig=x")
    assert EncordS3Integration(bucket_name="b", integration="i", endpoint_url=" ").endpoint_url is None
