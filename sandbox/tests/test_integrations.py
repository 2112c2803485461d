"""Cloud-integration fetches: which URLs belong to an integration, and real reads from each emulator.

The parsing tests need no server. The fetch tests put objects with the real SDKs into moto, fake-gcs-server
and Azurite (started once per session by ``encord_sandbox.pytest_plugin``) and read them back through
``fetch``, because the point of the sandbox is to behave like Encord's fetcher against real protocols.
"""

from __future__ import annotations

import os
import pickle
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from encord_sandbox.emulators import (
    AZURITE_ACCOUNT,
    MOTO_ACCESS_KEY_ID,
    MOTO_SECRET_ACCESS_KEY,
    azurite_connection_string,
    put_azure_blobs,
    put_gcs_objects,
    put_s3_objects,
    unique_name,
)
from encord_sandbox.jobs.fetchers import azure as azure_fetcher
from encord_sandbox.jobs.fetchers import fetch, list_objects
from encord_sandbox.jobs.fetchers import gcs as gcs_fetcher
from encord_sandbox.jobs.fetchers import s3 as s3_fetcher
from encord_sandbox.jobs.integrations import FetchError, IntegrationConfig, parse_object_url

S3 = IntegrationConfig(
    kind="s3", endpoint_url="http://127.0.0.1:9000", access_key_id="AKIAEXAMPLE", secret_access_key="s3-secret"
)
GCS = IntegrationConfig(kind="gcs", gcs_endpoint="http://127.0.0.1:4443")
AZURE = IntegrationConfig(
    kind="azure", azure_connection_string=azurite_connection_string("http://127.0.0.1:10000/devstoreaccount1")
)
LOCAL = IntegrationConfig(kind="local", root="/data/media")


def _reason(config: IntegrationConfig, url: str) -> str:
    with pytest.raises(FetchError) as excinfo:
        parse_object_url(config, url)
    return excinfo.value.reason


# ----------------------------------------------------------------------------------------- IntegrationConfig


@pytest.mark.parametrize("config", [S3, GCS, AZURE, LOCAL, IntegrationConfig(kind="s3")])
def test_config_round_trips_through_a_plain_dict(config: IntegrationConfig) -> None:
    as_dict = config.to_dict()
    assert all(isinstance(v, str) for v in as_dict.values())
    assert IntegrationConfig.from_dict(as_dict) == config


def test_repr_masks_secrets_but_to_dict_keeps_them_for_the_store() -> None:
    assert "s3-secret" not in repr(S3) and "secret_access_key='***'" in repr(S3)
    assert "AKIAEXAMPLE" in repr(S3)  # the key id is not a secret and helps tell integrations apart
    assert S3.to_dict()["secret_access_key"] == "s3-secret"
    sas = IntegrationConfig(
        kind="azure",
        azure_connection_string="BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=1&sig=abc",
    )
    for config, secret in [(AZURE, "Eby8vdM02x"), (sas, "sig=abc")]:
        assert secret not in repr(config) and secret not in str(config)
    assert "AccountName=devstoreaccount1;AccountKey=***;" in repr(AZURE)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "ftp"}, "unknown integration kind"),
        ({"kind": "local"}, "needs root"),
        ({"kind": "local", "root": "relative/dir"}, "needs root"),
        ({"kind": "s3", "root": "/data"}, "root does not apply to s3 integrations"),
        ({"kind": "gcs", "endpoint_url": "http://x"}, "endpoint_url does not apply"),
        ({"kind": "s3", "access_key_id": "a"}, "both access_key_id and secret_access_key"),
        ({"kind": "s3", "endpoint_url": "127.0.0.1:9000"}, "endpoint_url must be an http(s)"),
        ({"kind": "s3", "endpoint_url": "http://127.0.0.1:9000/prefix"}, "no path"),
        ({"kind": "s3", "endpoint_url": "http://127.0.0.1:99999"}, "malformed host or port"),
        ({"kind": "gcs", "gcs_endpoint": "ftp://h"}, "gcs_endpoint must be"),
        ({"kind": "azure"}, "needs azure_connection_string"),
        ({"kind": "azure", "azure_connection_string": "garbage"}, "malformed"),
        ({"kind": "azure", "azure_connection_string": "AccountKey=abc"}, "needs AccountName or BlobEndpoint"),
        ({"kind": "s3", "region": 5}, "region must be a string"),
        ({"root": "/data"}, "need a kind"),
        ({"kind": "local", "root": "/data", "colour": "red"}, "unknown integration settings: colour"),
    ],
)
def test_config_rejects_bad_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        IntegrationConfig.from_dict(settings)


def test_connection_string_errors_never_quote_the_key() -> None:
    with pytest.raises(ValueError) as excinfo:
        IntegrationConfig(kind="azure", azure_connection_string="AccountKey=topsecret;BlobEndpoint=nope")
    assert "topsecret" not in str(excinfo.value)


# --------------------------------------------------------------------------------------------- URL parsing


@pytest.mark.parametrize(
    ("config", "url", "expected"),
    [
        # local: file URLs under root, percent-decoded, with '..' resolved lexically when it stays inside
        (LOCAL, "file:///data/media/cats/a.png", ("/data/media", "cats/a.png")),
        (LOCAL, "file://localhost/data/media/a%20b.png", ("/data/media", "a b.png")),
        (LOCAL, "file:///data/media/x/../y.png", ("/data/media", "y.png")),
        (IntegrationConfig(kind="local", root="/data/media/"), "file:///data/media/a.png", ("/data/media", "a.png")),
        # s3: CLI form verbatim (no decoding; '?' and '#' are key characters), AWS hosts, the endpoint
        (S3, "s3://bucket/a/b c.png", ("bucket", "a/b c.png")),
        (S3, "S3://bucket/k%20?v=1#x", ("bucket", "k%20?v=1#x")),
        (S3, "https://my.bucket.s3.eu-west-2.amazonaws.com/a%20b/c.png", ("my.bucket", "a b/c.png")),
        (S3, "https://bucket.s3.amazonaws.com/k", ("bucket", "k")),
        (S3, "https://bucket.s3-eu-west-1.amazonaws.com/k", ("bucket", "k")),
        (S3, "https://s3.us-east-2.amazonaws.com/bucket/dir/k", ("bucket", "dir/k")),
        (S3, "http://127.0.0.1:9000/bucket/dir/k.mp4", ("bucket", "dir/k.mp4")),
        (S3, "https://127.0.0.1:9000/bucket/k", ("bucket", "k")),
        (
            IntegrationConfig(kind="s3", endpoint_url="https://minio.internal/"),
            "https://MINIO.internal:443/b/k",
            ("b", "k"),
        ),
        # gcs
        (GCS, "gs://bucket/folder/ü.png", ("bucket", "folder/ü.png")),
        (GCS, "https://storage.googleapis.com/bucket/f/%C3%BC.png", ("bucket", "f/ü.png")),
        (GCS, "https://storage.cloud.google.com/bucket/k", ("bucket", "k")),
        (GCS, "https://bucket.storage.googleapis.com/k", ("bucket", "k")),
        (GCS, "http://127.0.0.1:4443/bucket/k", ("bucket", "k")),
        # azure: path-style under BlobEndpoint, and the account's public host
        (AZURE, "http://127.0.0.1:10000/devstoreaccount1/container/dir/blob.png", ("container", "dir/blob.png")),
        (AZURE, "https://devstoreaccount1.blob.core.windows.net/container/a%20b", ("container", "a b")),
        (
            IntegrationConfig(
                kind="azure", azure_connection_string="AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
            ),
            "https://acct.blob.core.windows.net/c/b",
            ("c", "b"),
        ),
        (
            IntegrationConfig(kind="azure", azure_connection_string="UseDevelopmentStorage=true"),
            "http://127.0.0.1:10000/devstoreaccount1/c/b",
            ("c", "b"),
        ),
    ],
)
def test_parse_accepts(config: IntegrationConfig, url: str, expected: tuple[str, str]) -> None:
    assert parse_object_url(config, url) == expected


@pytest.mark.parametrize(
    ("config", "url", "reason"),
    [
        # local: traversal (plain, percent-encoded), siblings of root, root itself, hosts, relative paths
        (LOCAL, "file:///data/media/../secrets/key.pem", "outside_root"),
        (LOCAL, "file:///data/media/%2e%2e/secrets/key.pem", "outside_root"),
        (LOCAL, "file:///data/media/a/../../x", "outside_root"),
        (LOCAL, "file:///data/media-other/a.png", "outside_root"),
        (LOCAL, "file:///data/media", "outside_root"),
        (LOCAL, "file:///etc/passwd", "outside_root"),
        (LOCAL, "file://fileserver/data/media/a.png", "invalid_url"),
        (LOCAL, "file:relative/a.png", "invalid_url"),
        (LOCAL, "file:///data/media/a.png?x=1", "invalid_url"),
        (LOCAL, "file:///data/media/a%00.png", "invalid_url"),
        (LOCAL, "/data/media/a.png", "invalid_url"),
        (LOCAL, "s3://bucket/key", "wrong_integration"),
        # s3
        (S3, "gs://bucket/key", "wrong_integration"),
        (S3, "https://acct.blob.core.windows.net/c/b", "wrong_integration"),
        (S3, "https://example.com/bucket/key", "wrong_integration"),
        (S3, "http://127.0.0.1:9001/bucket/key", "wrong_integration"),
        (S3, "https://s3.dualstack.us-east-1.amazonaws.com/b/k", "wrong_integration"),
        (S3, "ftp://host/bucket/key", "invalid_url"),
        (S3, "s3://bucket", "invalid_url"),
        (S3, "s3://bucket/", "invalid_url"),
        (S3, "s3:///key", "invalid_url"),
        (S3, "https://s3.amazonaws.com/bucket/", "invalid_url"),
        (S3, "https://s3.amazonaws.com//key", "invalid_url"),
        (S3, "http://127.0.0.1:9000/bucket/a/../other", "invalid_url"),
        (S3, "http://127.0.0.1:9000/bucket/%2E%2E/other", "invalid_url"),
        (S3, "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc", "invalid_url"),
        (S3, "https://user:pw@s3.amazonaws.com/bucket/k", "invalid_url"),
        (S3, "https://s3.amazonaws.com/bucket/%ff", "invalid_url"),
        (S3, "http://[::1/bucket/k", "invalid_url"),
        (S3, "http://127.0.0.1:notaport/bucket/k", "invalid_url"),
        (S3, "s3://bucket/line\nbreak", "invalid_url"),
        (S3, "s3://bucket/" + "k" * 17000, "invalid_url"),
        # gcs
        (GCS, "s3://bucket/key", "wrong_integration"),
        (GCS, "https://bucket.s3.amazonaws.com/key", "wrong_integration"),
        (GCS, "http://127.0.0.1:9999/bucket/key", "wrong_integration"),
        (GCS, "gs://bucket", "invalid_url"),
        # azure: other accounts, other endpoints, and the wrong account path under the emulator host
        (AZURE, "https://otheracct.blob.core.windows.net/c/b", "wrong_integration"),
        (AZURE, "http://127.0.0.1:10000/otheracct/c/b", "wrong_integration"),
        (AZURE, "http://127.0.0.1:10001/devstoreaccount1/c/b", "wrong_integration"),
        (AZURE, "gs://bucket/key", "wrong_integration"),
        (AZURE, "http://127.0.0.1:10000/devstoreaccount1/c", "invalid_url"),
        (AZURE, "https://devstoreaccount1.blob.core.windows.net/c/b?sv=2024&sig=abc", "invalid_url"),
        (
            IntegrationConfig(
                kind="azure",
                azure_connection_string="BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sig=x",
            ),
            "https://other.blob.core.windows.net/c/b",
            "wrong_integration",
        ),
    ],
)
def test_parse_rejects(config: IntegrationConfig, url: str, reason: str) -> None:
    assert _reason(config, url) == reason


def test_errors_name_the_url_and_the_reason_in_words() -> None:
    with pytest.raises(FetchError) as excinfo:
        parse_object_url(S3, "gs://bucket/key.png")
    assert str(excinfo.value) == "cannot fetch gs://bucket/key.png: this is a gcs URL but the integration is s3"
    with pytest.raises(
        FetchError, match=r"file:///data/media/\.\./x: the path is not a file under the integration root"
    ):
        parse_object_url(LOCAL, "file:///data/media/../x")
    with pytest.raises(FetchError, match=r"expected s3://bucket/key, .* or http://127\.0\.0\.1:9000/bucket/key"):
        parse_object_url(S3, "https://example.com/b/k")


def test_errors_redact_signatures_and_passwords_in_urls() -> None:
    for url in ["https://b.s3.amazonaws.com/k?X-Amz-Signature=deadbeef", "https://u:hunter2@s3.amazonaws.com/b/k"]:
        with pytest.raises(FetchError) as excinfo:
            parse_object_url(S3, url)
        assert "deadbeef" not in str(excinfo.value) and "hunter2" not in str(excinfo.value)
        assert "s3.amazonaws.com/" in excinfo.value.url


def test_fetch_error_survives_pickling() -> None:
    error = FetchError("s3://b/k", "not_found", "no such object")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.url, copy.reason, copy.detail, str(copy)) == (error.url, error.reason, error.detail, str(error))


# ----------------------------------------------------------------------------------------------- local fetch


@pytest.fixture
def media_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a b.png").write_bytes(b"png-bytes")
    (root / "empty.txt").write_bytes(b"")
    (tmp_path / "outside.txt").write_bytes(b"secret")
    return root


def _local(root: Path) -> IntegrationConfig:
    return IntegrationConfig(kind="local", root=str(root))


def _local_reason(root: Path, url: str, max_bytes: int | None = None) -> str:
    with pytest.raises(FetchError) as excinfo:
        fetch(_local(root), url, max_bytes=max_bytes)
    assert url.split("?")[0] in str(excinfo.value)
    return excinfo.value.reason


def test_local_fetch_reads_files_under_root(media_root: Path) -> None:
    assert fetch(_local(media_root), f"file://{media_root}/sub/a%20b.png") == b"png-bytes"
    assert fetch(_local(media_root), f"file://{media_root}/empty.txt", max_bytes=0) == b""
    assert fetch(_local(media_root), f"file://{media_root}/sub/a%20b.png", max_bytes=9) == b"png-bytes"


def test_local_fetch_follows_symlinks_that_stay_inside_root(media_root: Path) -> None:
    (media_root / "alias.png").symlink_to(media_root / "sub" / "a b.png")
    (media_root / "linked-dir").symlink_to(media_root / "sub", target_is_directory=True)
    assert fetch(_local(media_root), f"file://{media_root}/alias.png") == b"png-bytes"
    assert fetch(_local(media_root), f"file://{media_root}/linked-dir/a%20b.png") == b"png-bytes"


def test_local_fetch_refuses_symlinks_escaping_root(media_root: Path) -> None:
    (media_root / "escape.txt").symlink_to(media_root.parent / "outside.txt")
    (media_root / "escape-dir").symlink_to(media_root.parent, target_is_directory=True)
    assert _local_reason(media_root, f"file://{media_root}/escape.txt") == "outside_root"
    assert _local_reason(media_root, f"file://{media_root}/escape-dir/outside.txt") == "outside_root"
    assert _local_reason(media_root, f"file://{media_root}/../outside.txt") == "outside_root"


def test_local_root_reached_through_a_symlink_still_works(media_root: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias-root"
    alias.symlink_to(media_root, target_is_directory=True)
    assert fetch(_local(alias), f"file://{alias}/sub/a%20b.png") == b"png-bytes"


def test_local_fetch_errors(media_root: Path) -> None:
    assert _local_reason(media_root, f"file://{media_root}/missing.png") == "not_found"
    assert _local_reason(media_root, f"file://{media_root}/empty.txt/child") == "not_found"
    assert _local_reason(media_root, f"file://{media_root}/sub") == "not_found"  # a directory
    assert _local_reason(media_root, f"file://{media_root}/sub/a%20b.png", max_bytes=8) == "too_large"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_local_fetch_does_not_hang_on_a_fifo(media_root: Path) -> None:
    os.mkfifo(media_root / "pipe")
    assert _local_reason(media_root, f"file://{media_root}/pipe") == "not_found"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file regardless of mode")
def test_local_fetch_reports_unreadable_files(media_root: Path) -> None:
    locked = media_root / "locked.png"
    locked.write_bytes(b"x")
    locked.chmod(0)
    assert _local_reason(media_root, f"file://{media_root}/locked.png") == "access_denied"


def test_fetch_rejects_a_negative_limit(media_root: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        fetch(_local(media_root), f"file://{media_root}/empty.txt", max_bytes=-1)


# ------------------------------------------------------------------------------------------ emulator fetches


@pytest.fixture(scope="module")
def s3_bucket(s3_endpoint: str) -> str:
    bucket = unique_name("s3")
    put_s3_objects(s3_endpoint, bucket, {"dir/a b.png": b"s3-bytes", "empty": b"", "q?x#y": b"odd-key"})
    return bucket


@pytest.fixture(scope="module")
def gcs_bucket(gcs_endpoint: str) -> str:
    bucket = unique_name("gcs")
    put_gcs_objects(gcs_endpoint, bucket, {"dir/ü b.png": b"gcs-bytes", "empty": b""})
    return bucket


@pytest.fixture(scope="module")
def azure_container(azure_connection_string: str) -> str:
    container = unique_name("az")
    put_azure_blobs(azure_connection_string, container, {"dir/a b.png": b"azure-bytes", "empty": b""})
    return container


def _s3(endpoint: str) -> IntegrationConfig:
    return IntegrationConfig(
        kind="s3",
        endpoint_url=endpoint,
        access_key_id=MOTO_ACCESS_KEY_ID,
        secret_access_key=MOTO_SECRET_ACCESS_KEY,
        region="us-east-1",
    )


def _fetch_reason(config: IntegrationConfig, url: str, max_bytes: int | None = None) -> str:
    with pytest.raises(FetchError) as excinfo:
        fetch(config, url, max_bytes=max_bytes)
    assert str(excinfo.value).startswith(f"cannot fetch {url}: ")
    return excinfo.value.reason


def test_s3_fetch(s3_endpoint: str, s3_bucket: str) -> None:
    config = _s3(s3_endpoint)
    assert fetch(config, f"s3://{s3_bucket}/dir/a b.png") == b"s3-bytes"
    assert fetch(config, f"{s3_endpoint}/{s3_bucket}/dir/a%20b.png") == b"s3-bytes"
    # A spec written for a real AWS bucket is served from the emulator the integration points at.
    assert fetch(config, f"https://{s3_bucket}.s3.eu-west-2.amazonaws.com/dir/a%20b.png") == b"s3-bytes"
    assert fetch(config, f"s3://{s3_bucket}/q?x#y") == b"odd-key"
    assert fetch(config, f"s3://{s3_bucket}/empty", max_bytes=0) == b""
    assert fetch(config, f"s3://{s3_bucket}/dir/a b.png", max_bytes=8) == b"s3-bytes"


def test_s3_fetch_errors(s3_endpoint: str, s3_bucket: str) -> None:
    config = _s3(s3_endpoint)
    assert _fetch_reason(config, f"s3://{s3_bucket}/missing.png") == "not_found"
    with pytest.raises(FetchError, match="bucket 'no-such-bucket' does not exist"):
        fetch(config, "s3://no-such-bucket/k")
    assert _fetch_reason(config, f"s3://{s3_bucket}/dir/a b.png", max_bytes=7) == "too_large"


def test_gcs_fetch(gcs_endpoint: str, gcs_bucket: str) -> None:
    config = IntegrationConfig(kind="gcs", gcs_endpoint=gcs_endpoint)
    assert fetch(config, f"gs://{gcs_bucket}/dir/ü b.png") == b"gcs-bytes"
    assert fetch(config, f"https://storage.googleapis.com/{gcs_bucket}/dir/%C3%BC%20b.png") == b"gcs-bytes"
    assert fetch(config, f"{gcs_endpoint}/{gcs_bucket}/dir/%C3%BC%20b.png") == b"gcs-bytes"
    assert fetch(config, f"gs://{gcs_bucket}/empty", max_bytes=0) == b""
    assert fetch(config, f"gs://{gcs_bucket}/empty", max_bytes=10) == b""
    assert fetch(config, f"gs://{gcs_bucket}/dir/ü b.png", max_bytes=9) == b"gcs-bytes"


def test_gcs_fetch_errors(gcs_endpoint: str, gcs_bucket: str) -> None:
    config = IntegrationConfig(kind="gcs", gcs_endpoint=gcs_endpoint)
    assert _fetch_reason(config, f"gs://{gcs_bucket}/missing.png") == "not_found"
    assert _fetch_reason(config, "gs://no-such-bucket/k") == "not_found"
    assert _fetch_reason(config, f"gs://{gcs_bucket}/dir/ü b.png", max_bytes=8) == "too_large"


def test_azure_fetch(azure_connection_string: str, azure_container: str) -> None:
    config = IntegrationConfig(kind="azure", azure_connection_string=azure_connection_string)
    blob_endpoint = azure_connection_string.split("BlobEndpoint=")[1].rstrip(";")
    assert fetch(config, f"{blob_endpoint}/{azure_container}/dir/a%20b.png") == b"azure-bytes"
    public = f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{azure_container}/dir/a%20b.png"
    assert fetch(config, public) == b"azure-bytes"
    assert fetch(config, f"{blob_endpoint}/{azure_container}/empty", max_bytes=0) == b""
    assert fetch(config, f"{blob_endpoint}/{azure_container}/empty", max_bytes=10) == b""
    assert fetch(config, f"{blob_endpoint}/{azure_container}/dir/a%20b.png", max_bytes=11) == b"azure-bytes"


def test_azure_fetch_errors(azure_connection_string: str, azure_container: str) -> None:
    config = IntegrationConfig(kind="azure", azure_connection_string=azure_connection_string)
    blob_endpoint = azure_connection_string.split("BlobEndpoint=")[1].rstrip(";")
    assert _fetch_reason(config, f"{blob_endpoint}/{azure_container}/missing.png") == "not_found"
    with pytest.raises(FetchError, match="container 'no-such-container' does not exist"):
        fetch(config, f"{blob_endpoint}/no-such-container/b")
    assert _fetch_reason(config, f"{blob_endpoint}/{azure_container}/dir/a%20b.png", max_bytes=10) == "too_large"
    # Azurite verifies Shared Key signatures, so a wrong account key is a real access-denied.
    wrong_key = IntegrationConfig(
        kind="azure", azure_connection_string=azure_connection_string.replace("AccountKey=Eby8", "AccountKey=Xby8")
    )
    assert _fetch_reason(wrong_key, f"{blob_endpoint}/{azure_container}/dir/a%20b.png") == "access_denied"


def test_unreachable_endpoints_are_reported_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shorten the retry budgets: this test is about the error mapping, not the back-off schedule.
    monkeypatch.setattr(gcs_fetcher, "_GCS_RETRY_TIMEOUT_S", 0.5)
    monkeypatch.setattr(s3_fetcher, "RETRY_ATTEMPTS", 1)
    monkeypatch.setattr(azure_fetcher, "RETRY_ATTEMPTS", 1)
    dead = "http://127.0.0.1:1"
    cases = [
        (IntegrationConfig(kind="s3", endpoint_url=dead, access_key_id="a", secret_access_key="b"), "s3://b/k"),
        (IntegrationConfig(kind="gcs", gcs_endpoint=dead), "gs://b/k"),
        (IntegrationConfig(kind="azure", azure_connection_string=azurite_connection_string(f"{dead}/devstoreaccount1")),
         f"{dead}/devstoreaccount1/c/b"),
    ]  # fmt: skip
    for config, url in cases:
        assert _fetch_reason(config, url) == "unavailable"


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_concurrent_fetches_share_one_client_per_config(
    kind: str,
    s3_endpoint: str,
    s3_bucket: str,
    gcs_endpoint: str,
    gcs_bucket: str,
    azure_connection_string: str,
    azure_container: str,
) -> None:
    blob_endpoint = azure_connection_string.split("BlobEndpoint=")[1].rstrip(";")
    config, url, expected, factory = {
        # A config never seen before (unique region / endpoint spelling), so the cache starts empty for it.
        "s3": (
            IntegrationConfig(kind="s3", endpoint_url=f"{s3_endpoint}/", access_key_id="k", secret_access_key="s",
                              region=unique_name("r")),
            f"s3://{s3_bucket}/dir/a b.png", b"s3-bytes", s3_fetcher._s3_client,
        ),
        "gcs": (
            IntegrationConfig(kind="gcs", gcs_endpoint=f"{gcs_endpoint}/"),
            f"gs://{gcs_bucket}/dir/ü b.png", b"gcs-bytes", gcs_fetcher._gcs_client,
        ),
        "azure": (
            IntegrationConfig(kind="azure", azure_connection_string=f"{azure_connection_string}EndpointSuffix=x.net"),
            f"{blob_endpoint}/{azure_container}/dir/a%20b.png", b"azure-bytes", azure_fetcher._azure_client,
        ),
    }[kind]  # fmt: skip
    builds = _count_calls(factory)
    start = threading.Barrier(8, timeout=30)  # the timeout turns a stuck worker into a failure, not a hang

    def worker(_: int) -> bytes:
        start.wait()
        return fetch(config, url)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(32)))
    assert results == [expected] * 32
    assert builds() == 1


def _count_calls(cached: Callable[..., object]) -> Callable[[], int]:
    """How many times an lru_cache-wrapped client factory actually built a client since this call."""
    misses = cached.cache_info().misses  # type: ignore[attr-defined]
    return lambda: cached.cache_info().misses - misses  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ emulator listings


def _listed(config: IntegrationConfig, remote_url: str) -> dict[str, str]:
    """path -> object URL of every object ``list_objects`` finds, each URL read back through ``fetch``."""
    found = {path: url for page in list_objects(config, remote_url) for path, url, checksum in page if checksum}
    for url in found.values():
        fetch(config, url)  # the URL a cloud-synced folder registers is one the fetcher reads
    return found


def test_listings_under_a_remote_url_on_every_emulator(
    s3_endpoint: str, s3_bucket: str, gcs_endpoint: str, gcs_bucket: str, azure_connection_string: str,
    azure_container: str, media_root: Path,
) -> None:  # fmt: skip
    assert sorted(_listed(_s3(s3_endpoint), f"s3://{s3_bucket}/dir/")) == ["a b.png"]
    assert sorted(_listed(_s3(s3_endpoint), f"{s3_endpoint}/{s3_bucket}/")) == ["dir/a b.png", "empty", "q?x#y"]
    assert sorted(_listed(IntegrationConfig(kind="gcs", gcs_endpoint=gcs_endpoint), f"gs://{gcs_bucket}/")) == [
        "dir/ü b.png", "empty"]  # fmt: skip
    blob_endpoint = azure_connection_string.split("BlobEndpoint=")[1].rstrip(";")
    azure = IntegrationConfig(kind="azure", azure_connection_string=azure_connection_string)
    assert sorted(_listed(azure, f"{blob_endpoint}/{azure_container}/dir/")) == ["a b.png"]
    assert "empty.txt" in _listed(_local(media_root), media_root.as_uri() + "/")
