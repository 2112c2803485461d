"""The inventory lets a re-run send Encord only what changed in the bucket, and notices what vanished.

Through the S3 emulator and the sandbox: each run's Encord requests are counted, and the folder's items
checked directly, so "nothing sent" and "nothing duplicated" are facts, not the task's own claims.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from encord.storage import StorageFolder
from encord_sandbox import samples
from encord_sandbox.server import Sandbox

from prefect_encord.blocks.s3 import EncordS3Integration
from prefect_encord.planning.objects import ObjectRecord
from prefect_encord.planning.specs import PlanOptions
from prefect_encord.state.inventory import default_path
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.testing import credentials_block
from tests.integration_buckets import add_sandbox_integration, new_bucket
from tests.tasks.conftest import HttpLog

FILES = {f"cams/{n:02d}.png": samples.png(color=(n, 3, 5)) for n in range(30)}


@pytest.fixture(autouse=True)
def own_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_INVENTORY_DIRECTORY", str(tmp_path / "inventory"))


def _writes(log: HttpLog) -> list[tuple[str, str]]:
    return [(method, path) for method, path in log.api if method != "GET" and not path.endswith("/get-bulk")]


def _urls(folder: StorageFolder) -> list[str]:
    return sorted(str(item.url) for item in folder.list_items())


def test_an_unchanged_rerun_sends_encord_no_write_and_only_two_reads(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, http_log: HttpLog, tmp_path: Path
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    credentials = credentials_block(sandbox)
    first = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    assert len(first.created) == 30
    http_log.api.clear()

    again = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)

    assert again.jobs == () and again.unchanged == 30 and again.changed == () and again.vanished == ()
    assert again.skipped_duplicates == first.created  # the item map still names every item
    assert sorted(http_log.api) == [("GET", "/v2/public/cloud-integrations"),
                                    ("GET", f"/v2/public/storage/folders/{folder.uuid}")]  # fmt: skip
    assert len(_urls(folder)) == 30


def test_a_rerun_sends_only_new_objects_reports_overwritten_and_vanished_ones(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, http_log: HttpLog, tmp_path: Path
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    assert isinstance(block, EncordS3Integration)
    credentials = credentials_block(sandbox)
    first = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    block.write_object("cams/30.png", samples.png(color=(30, 3, 5)))
    block.write_object("cams/31.png", samples.png(color=(31, 3, 5)))
    block.write_object("cams/07.png", samples.png(color=(99, 99, 99)))  # overwritten: new bytes, new ETag
    block._client().delete_object(Bucket=block.bucket_name, Key="cams/12.png")
    http_log.api.clear()

    again = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)

    new = {block.object_url("cams/30.png"), block.object_url("cams/31.png")}
    assert set(again.created) == new and [(job.created, job.present) for job in again.jobs] == [(2, 0)]
    assert again.unchanged == 28  # 30, less the overwritten one and the deleted one
    assert again.changed == ((block.object_url("cams/07.png"), first.created[block.object_url("cams/07.png")]),)
    assert again.vanished == ((block.object_url("cams/12.png"), first.created[block.object_url("cams/12.png")]),)
    assert len(_writes(http_log)) == 1  # one job started, for the two new objects
    assert len(_urls(folder)) == 32 and len(set(_urls(folder))) == 32


def test_a_lost_inventory_is_rebuilt_from_encords_answers_without_duplicates(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, http_log: HttpLog, tmp_path: Path
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    credentials = credentials_block(sandbox)
    first = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    inventory = default_path(str(folder.uuid), block)
    assert inventory.exists()
    inventory.unlink()

    rebuilt = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    assert rebuilt.created == {} and rebuilt.skipped_duplicates == first.created  # Encord skipped them all
    http_log.api.clear()
    third = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)

    assert third.jobs == () and third.unchanged == 30 and _writes(http_log) == []
    assert len(_urls(folder)) == 30


def test_refresh_and_no_inventory_send_everything_again(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, tmp_path: Path
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    credentials = credentials_block(sandbox)
    register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)

    refreshed = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path, refresh_inventory=True)
    without = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path, use_inventory=False)

    for run in (refreshed, without):
        assert (
            sum(job.created + job.present for job in run.jobs) == 30
            and run.created == {}
            and len(run.skipped_duplicates) == 30
        )
    assert len(_urls(folder)) == 30


def test_an_overwrite_is_reported_once_and_a_vanished_object_until_its_item_goes(
    request: pytest.FixtureRequest, sandbox: Sandbox, folder: StorageFolder, tmp_path: Path
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    assert isinstance(block, EncordS3Integration)
    credentials = credentials_block(sandbox)
    register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    block.write_object("cams/07.png", samples.png(color=(99, 99, 99)))
    block._client().delete_object(Bucket=block.bucket_name, Key="cams/12.png")

    runs = [register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path) for _ in range(2)]

    assert [len(run.changed) for run in runs] == [1, 0]
    assert [len(run.vanished) for run in runs] == [1, 1]
    assert [run.unchanged for run in runs] == [28, 29]


@pytest.mark.parametrize("images", ["single", "group"])
def test_notified_keys_are_looked_up_not_listed_and_what_vanished_is_seen(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    folder: StorageFolder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    images: str,
) -> None:
    """Single images are looked up one by one, nothing listed; grouped images need their directory, listed whole
    (and nothing else: other/ is never listed)."""
    files = {**FILES, **{f"other/{n}.png": samples.png(color=(n, 8, 8)) for n in range(5)}}
    block = new_bucket("s3", request, files, integration=add_sandbox_integration(sandbox, "s3", request))
    assert isinstance(block, EncordS3Integration)
    credentials = credentials_block(sandbox)
    options = PlanOptions(images=images)  # type: ignore[arg-type]
    register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path, options=options)
    block.write_object("cams/new.png", samples.png(color=(200, 8, 8)))
    block._client().delete_object(Bucket=block.bucket_name, Key="cams/03.png")
    block._client().delete_object(Bucket=block.bucket_name, Key="other/1.png")  # not notified: not seen here
    listed: list[str] = []
    pages = EncordS3Integration._pages

    def spy(self: EncordS3Integration, prefix: str, page_size: int) -> Iterator[list[ObjectRecord]]:
        listed.append(prefix)
        return pages(self, prefix, page_size)

    monkeypatch.setattr(EncordS3Integration, "_pages", spy)
    notified = ["cams/new.png", "cams/03.png"]

    run = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path, options=options, keys=notified)

    if images == "single":
        assert list(run.created) == [block.object_url("cams/new.png")]
        assert [url for url, _ in run.vanished] == [block.object_url("cams/03.png")]
        assert run.unchanged == 0 and listed == []  # two lookups, no listing
    else:  # the group of cams/ changed (one image more, one less): reported, its directory listed, nothing else
        assert [url for url, _ in run.changed] == [block.object_url("cams/00.png")] and listed == ["cams/"]


def _damage(inventory: Path, how: str) -> None:
    if how == "overwritten":
        inventory.write_bytes(b"not an inventory at all\n" * 200)
    else:  # one damaged page: the header of the table's b-tree page
        data = bytearray(inventory.read_bytes())
        page = int.from_bytes(data[16:18], "big") or 65536
        assert len(data) >= 2 * page, "the inventory has a second page to damage"
        data[page : page + 64] = b"\xff" * 64
        inventory.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["overwritten", "a damaged page"])
def test_a_damaged_inventory_is_moved_aside_with_a_warning_and_rebuilt_from_encord(
    how: str,
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    folder: StorageFolder,
    http_log: HttpLog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    credentials = credentials_block(sandbox)
    first = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    inventory = default_path(str(folder.uuid), block)
    _damage(inventory, how)

    rebuilt = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    assert rebuilt.created == {} and rebuilt.skipped_duplicates == first.created  # Encord skipped them all
    (aside,) = inventory.parent.glob(f"{inventory.name}.damaged-*")
    assert f"moved aside to {aside.name}" in caplog.text and "was damaged" in caplog.text
    http_log.api.clear()
    third = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path)
    assert third.jobs == () and third.unchanged == 30 and _writes(http_log) == []

    _damage(inventory, how)  # --refresh-inventory works on a damaged file too
    refreshed = register_bucket.fn(credentials, block, str(folder.uuid), ledger_dir=tmp_path, refresh_inventory=True)
    assert refreshed.created == {} and len(_urls(folder)) == 30


def test_an_include_that_matches_nothing_says_so(
    request: pytest.FixtureRequest,
    sandbox: Sandbox,
    folder: StorageFolder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    block = new_bucket("s3", request, FILES, integration=add_sandbox_integration(sandbox, "s3", request))
    result = register_bucket.fn(credentials_block(sandbox), block, str(folder.uuid), include=["*.pgn"],
                                ledger_dir=tmp_path)  # fmt: skip
    assert result.jobs == () and _urls(folder) == []
    assert "matched include ['*.pgn']: nothing was registered" in caplog.text
