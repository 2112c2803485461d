"""Metadata sidecars: ``x.png.metadata.json`` beside ``x.png`` is ``x.png``'s custom metadata, never an item; applied
once its item exists, checked against the schema, read again only when it changes; named keys bring theirs.

Through the S3 emulator and the sandbox: items and their metadata are read back from Encord, requests counted.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from encord.storage import StorageFolder
from encord_sandbox import samples
from encord_sandbox.server import Sandbox

from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.planning.sidecars import SidecarError, check_suffix, parse_sidecar, sidecar_target
from prefect_encord.tasks.metadata_schema import apply_metadata_schema
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.testing import credentials_block
from tests.integration_buckets import add_sandbox_integration, new_bucket
from tests.tasks.conftest import HttpLog

T = uuid.uuid4().hex[:6]
WEATHER, COUNT = f"weather-{T}", f"count-{T}"
SUFFIX = ".metadata.json"


@pytest.fixture(autouse=True)
def own_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY", str(tmp_path / "inventory"))


@pytest.fixture(scope="module", autouse=True)
def schema(sandbox: Sandbox) -> None:
    apply_metadata_schema.fn(credentials_block(sandbox), {WEATHER: {"type": "enum", "values": ["rain", "sunny"]},
                                                          COUNT: "number"})  # fmt: skip


def _sidecar(**values: object) -> bytes:
    return json.dumps(values).encode()


def _metadata(folder: StorageFolder) -> dict[str, dict[str, object]]:
    """Every item of the folder, by the key its URL ends in, with its custom metadata."""
    return {str(item.url).split("/", 4)[-1]: dict(item.client_metadata or {}) for item in folder.list_items()}


@pytest.fixture
def bucket(request: pytest.FixtureRequest, sandbox: Sandbox) -> EncordS3Integration:
    files = {
        "cams/a.png": samples.png(color=(1, 2, 3)),
        f"cams/a.png{SUFFIX}": _sidecar(**{WEATHER: "rain", COUNT: 3}),
        "cams/b.png": samples.png(color=(4, 5, 6)),
        f"cams/b.png{SUFFIX}": _sidecar(**{WEATHER: "snow"}),  # not one of the enum's values
        "cams/c.png": samples.png(color=(7, 8, 9)),
        f"cams/ghost.png{SUFFIX}": _sidecar(**{COUNT: 1}),  # no such object
    }
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
    assert isinstance(block, EncordS3Integration)
    return block


def test_sidecars_become_their_objects_metadata_and_are_never_items(
    bucket: EncordS3Integration, sandbox: Sandbox, folder: StorageFolder, tmp_path: Path
) -> None:
    credentials = credentials_block(sandbox)

    first = register_bucket.fn(credentials, bucket, str(folder.uuid), ledger_dir=tmp_path, include=["*.png"],
                               sidecar_suffix=SUFFIX)  # fmt: skip

    assert sorted(first.created) == sorted(bucket.object_url(f"cams/{n}.png") for n in "abc")
    assert _metadata(folder) == {"cams/a.png": {WEATHER: "rain", COUNT: 3}, "cams/b.png": {}, "cams/c.png": {}}
    sidecars = first.sidecars
    assert sidecars is not None and (sidecars.updated, sidecars.unchanged) == (1, 0)
    (why,) = sidecars.failed.values()
    assert list(sidecars.failed) == [bucket.object_url(f"cams/b.png{SUFFIX}")] and "snow" in why, why
    assert sidecars.orphaned == {bucket.object_url(f"cams/ghost.png{SUFFIX}"): bucket.object_url("cams/ghost.png")}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys the S3 block reads (its real reads, watched)."""
    keys: list[str] = []
    real = EncordS3Integration._read

    def watched(self: EncordS3Integration, key: str, start: int, length: int | None) -> bytes:
        keys.append(key)
        return real(self, key, start, length)

    monkeypatch.setattr(EncordS3Integration, "_read", watched)
    return keys


def test_a_rerun_reads_only_the_sidecars_that_changed_or_failed(
    bucket: EncordS3Integration,
    sandbox: Sandbox,
    folder: StorageFolder,
    tmp_path: Path,
    http_log: HttpLog,
    reads: list[str],
) -> None:
    credentials = credentials_block(sandbox)
    register_bucket.fn(credentials, bucket, str(folder.uuid), ledger_dir=tmp_path, sidecar_suffix=SUFFIX)
    bucket.write_object(f"cams/b.png{SUFFIX}", _sidecar(**{WEATHER: "sunny"}))  # fixed
    bucket.write_object(f"cams/c.png{SUFFIX}", _sidecar(**{COUNT: 9}))  # new
    reads.clear()

    again = register_bucket.fn(credentials, bucket, str(folder.uuid), ledger_dir=tmp_path, sidecar_suffix=SUFFIX)

    assert again.jobs == () and again.sidecars is not None
    assert (again.sidecars.updated, again.sidecars.failed) == (2, {})
    assert _metadata(folder)["cams/b.png"] == {WEATHER: "sunny"} and _metadata(folder)["cams/c.png"] == {COUNT: 9}
    assert sorted(reads) == [f"cams/b.png{SUFFIX}", f"cams/c.png{SUFFIX}"]  # not a.png's, unchanged
    reads.clear()
    http_log.api.clear()

    third = register_bucket.fn(credentials, bucket, str(folder.uuid), ledger_dir=tmp_path, sidecar_suffix=SUFFIX)

    assert third.sidecars is not None and (third.sidecars.updated, third.sidecars.failed) == (0, {})
    assert reads == []  # nothing read again
    assert [method for method, path in http_log.api if method != "GET"] == []  # nothing written


def test_a_named_key_brings_its_sidecar_and_a_named_sidecar_updates_its_item(
    bucket: EncordS3Integration, sandbox: Sandbox, folder: StorageFolder, tmp_path: Path
) -> None:
    credentials = credentials_block(sandbox)
    register_bucket.fn(credentials, bucket, str(folder.uuid), ledger_dir=tmp_path, keys=["cams/a.png"],
                       sidecar_suffix=SUFFIX)  # fmt: skip
    assert _metadata(folder) == {"cams/a.png": {WEATHER: "rain", COUNT: 3}}  # its sidecar, not named, came along

    bucket.write_object(f"cams/a.png{SUFFIX}", _sidecar(**{COUNT: 4}))
    named = [f"cams/a.png{SUFFIX}"]
    changed = register_bucket.fn(credentials, bucket, str(folder.uuid), ledger_dir=tmp_path, keys=named,
                                 sidecar_suffix=SUFFIX, sidecar_mode="overwrite")  # fmt: skip

    assert changed.jobs == () and changed.vanished == ()
    assert _metadata(folder) == {"cams/a.png": {COUNT: 4}}  # overwrite: exactly the sidecar's


def test_the_sidecar_rules() -> None:
    assert sidecar_target("cams/x.jpg.metadata.json", SUFFIX) == "cams/x.jpg"
    assert sidecar_target("cams/.metadata.json", SUFFIX) is None and sidecar_target("cams/x.jpg", SUFFIX) is None
    assert sidecar_target("cams/x.jpg.metadata.json", "") is None
    assert check_suffix(".meta") == ".meta"
    with pytest.raises(ValueError, match="'' must be 1 to 128 characters"):
        check_suffix("")
    with pytest.raises(ValueError, match="must not contain '/'"):
        check_suffix("/meta.json")
    assert parse_sidecar(b'{"a": 1}') == {"a": 1}
    for bad, why in [(b"[1]", "a JSON list, not an object"), (b"{", "not JSON"), (b"[" * 100, "deeper than 64")]:
        with pytest.raises(SidecarError, match=why):
            parse_sidecar(bad)
