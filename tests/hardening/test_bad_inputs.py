"""The bad-input catalogue: every input a user can get wrong, driven through our tasks, flows and blocks.

Each case asserts two things. The error is clear and *names the offending value* (the file, key, UUID,
number or path), and it is raised before anything is written: the sandbox's whole state (every table, every
blob; see :mod:`tests.hardening.state`) is the same afterwards. Where one bad unit sits among good ones (a
corrupt file in a directory, one object of a bucket, one group of many), the task must not fail at all: the
bad unit is reported by name, its siblings are created, and nothing is created for the bad unit.

Sandbox-side rules that our own planning does not duplicate (a layout nested too deeply, a registered URL
outside the integration's root, an item's metadata checked against the schema) are reached through our
tasks where they can be, and through the SDK otherwise.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from encord.exceptions import AuthenticationError, InvalidArgumentsError, ResourceNotFoundError
from encord.orm.group_layout import DataUnitTile, LayoutGrid
from encord_sandbox import samples
from encord_sandbox.server import Sandbox
from encord_sandbox.snapshots import counts, unchanged
from pydantic import SecretStr, ValidationError

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.storage import IntegrationNotFound
from prefect_encord.flows.ingest import ingest
from prefect_encord.flows.parameters import LocalSource
from prefect_encord.limits import MAX_SEQUENCE_FRAMES
from prefect_encord.planning.exports import UnsafeExportPath
from prefect_encord.planning.label_rows import LabelRowFilters
from prefect_encord.planning.manifest_readers import ManifestError
from prefect_encord.planning.objects import ObjectRecord, Skipped
from prefect_encord.planning.outcomes import BucketRegistration
from prefect_encord.planning.schema import SchemaDeclarationError
from prefect_encord.planning.schema_diff import SchemaChangeRefused
from prefect_encord.planning.schema_sources import schema_from_file
from prefect_encord.planning.specs import Entry, PlanOptions, plan_registration
from prefect_encord.tasks.data_groups import create_data_groups
from prefect_encord.tasks.datasets import get_or_create_dataset, link_items_to_dataset
from prefect_encord.tasks.deletion import delete_items
from prefect_encord.tasks.exports import export_label_rows
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.metadata import import_metadata
from prefect_encord.tasks.metadata_schema import apply_metadata_schema
from prefect_encord.tasks.projects import attach_datasets, get_or_create_project
from prefect_encord.tasks.registration import register_bucket, register_chunk
from prefect_encord.tasks.uploads import UploadResult, upload_directory
from tests.integration_buckets import add_sandbox_integration, new_bucket

TILES = 15  # items in the shared folder: enough for a grid of 13 and a sibling group of 2
SCHEMA = {
    "hd.count": "number",
    "hd.weather": {"type": "enum", "values": ["sun", "rain"]},
    "hd.vec": {"type": "embedding", "size": 4},
}


def _token() -> str:
    return uuid.uuid4().hex[:8]


def _raises(kind: type[BaseException] | tuple[type[BaseException], ...], *fragments: str) -> Any:
    """``pytest.raises`` that also requires every fragment (taken literally) in the message."""
    return pytest.raises(kind, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


# --- a world to be wrong about: a folder of items, a schema, a dataset and a project --------------------------


@dataclass(frozen=True)
class World:
    folder: str
    items: dict[str, str]  # file name → item UUID
    dataset: str
    project: str


@pytest.fixture(scope="module")
def world(hardened: Sandbox, admin: EncordCredentials, tmp_path_factory: pytest.TempPathFactory) -> World:
    tiles = tmp_path_factory.mktemp("tiles")
    for n in range(TILES):
        (tiles / f"tile-{n:02d}.png").write_bytes(samples.png(color=(n * 10, 0, 0)))
    folder = get_or_create_folder.fn(admin, f"hardening/{_token()}")
    uploaded = upload_directory.fn(admin, folder, tiles)
    assert not uploaded.failed and len(uploaded.items) == TILES
    apply_metadata_schema.fn(admin, SCHEMA)
    dataset = get_or_create_dataset.fn(admin, f"hardening {_token()}").dataset_hash
    project = get_or_create_project.fn(admin, f"hardening {_token()}", dataset_hashes=[dataset]).project_hash
    return World(folder, dict(sorted(uploaded.items.items())), dataset, project)


def _tiles(world: World, *numbers: int) -> list[str]:
    return [world.items[f"tile-{n:02d}.png"] for n in numbers]


def _item_names(hardened: Sandbox, folder: str) -> list[str]:
    """Names of the folder's items, frames and groups included, placeholders (reserved upload slots) not."""
    rows = hardened.backend.store.query("SELECT name FROM items WHERE folder = ? AND is_placeholder = 0", (folder,))
    return sorted(r["name"] for r in rows)


def _groups_in(hardened: Sandbox, folder: str) -> dict[str, str]:
    rows = hardened.backend.store.query(
        "SELECT name, uuid FROM items WHERE folder = ? AND item_type = 'group'", (folder,)
    )
    return {r["name"]: r["uuid"] for r in rows}


# --- layouts and grouping rules: refused before any request --------------------------------------------------

KEY_RULE = {"kind": "key_pattern", "pattern": r"(?P<key>s\d+)_(?P<role>\w+)"}
_SPLIT_99 = LayoutGrid(
    direction="row", first=DataUnitTile(key="front"), second=DataUnitTile(key="rear"), split_percentage=99
)

INVALID_TEMPLATES: dict[str, tuple[Any, Any, tuple[str, ...]]] = {
    "layout-of-unknown-kind": (KEY_RULE, {"kind": "hexagon"}, ("'hexagon'",)),
    "layout-that-is-not-an-object": (KEY_RULE, "grid", ("input_value='grid'",)),
    "grid-of-13-roles": (KEY_RULE, {"kind": "grid", "roles": [f"r{i}" for i in range(13)]}, ("13 roles", "at most 12")),
    "carousel-of-51-roles": (
        KEY_RULE,
        {"kind": "carousel", "roles": [f"r{i}" for i in range(51)]},
        ("51 roles", "at most 50"),
    ),
    "split-percentage-out-of-range": (
        KEY_RULE,
        {"kind": "custom", "layout": _SPLIT_99},
        ("split_percentage 99 is outside 5–95",),
    ),
    "carousel-size-out-of-range": (
        KEY_RULE,
        {
            "kind": "custom",
            "layout": {"type": "data_unit_list", "keys": ["front"], "carousel_position": "top", "carousel_size": 80},
        },
        ("carousel_size 80 is outside 10–70",),
    ),
    "tile-settings-for-an-unknown-tile-key": (
        KEY_RULE,
        {
            "kind": "custom",
            "layout": {"type": "data_unit", "key": "front"},
            "settings": {"tile_settings": {"ghost": {"title": "?"}}},
        },
        ("role 'ghost' is not placed by the layout",),
    ),
    "role-placed-in-two-tiles": (
        KEY_RULE,
        {
            "kind": "custom",
            "layout": {
                "direction": "row",
                "first": {"type": "data_unit", "key": "front"},
                "second": {"type": "data_unit", "key": "front"},
                "split_percentage": 50,
            },
        },
        ("role 'front' is placed in more than one tile",),
    ),
    "grouping-pattern-without-a-key-group": (
        {"kind": "key_pattern", "pattern": "(?P<scene>s1)"},
        {"kind": "grid"},
        ("(?P<scene>s1)", "needs a named group (?P<key>...)"),
    ),
    "grouping-pattern-that-is-not-a-regex": (
        {"kind": "key_pattern", "pattern": "(?P<key>["},
        {"kind": "grid"},
        ("(?P<key>[", "is not a regular expression"),
    ),
}


@pytest.mark.parametrize("case", list(INVALID_TEMPLATES))
def test_an_invalid_layout_or_rule_is_refused_before_any_request(
    case: str, hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    rule, layout, fragments = INVALID_TEMPLATES[case]
    items = {"s1_front.png": _tiles(world, 0)[0], "s1_rear.png": _tiles(world, 1)[0]}
    with unchanged(hardened), _raises(ValueError, *fragments):
        create_data_groups.fn(admin, world.folder, items, rule, layout)


def test_a_catastrophic_group_pattern_fails_in_a_bounded_time_before_any_group(
    hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    """``(a|a)+`` before a ``b`` that never comes tries 2^34 ways on 34 a's: hours, without the time limit."""
    items = {"a" * 34: _tiles(world, 0)[0]}
    started = time.monotonic()
    with unchanged(hardened), _raises(ValueError, "'(?P<key>(a|a)+)b'", f"'{'a' * 34}' (34 characters)"):
        create_data_groups.fn(admin, world.folder, items, {"kind": "key_pattern", "pattern": "(?P<key>(a|a)+)b"},
                              {"kind": "grid"})  # fmt: skip
    assert time.monotonic() - started < 30


def test_a_batch_size_of_zero_is_refused(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    with unchanged(hardened), _raises(ValueError, "batch_size 0"):
        create_data_groups.fn(admin, world.folder, {}, KEY_RULE, {"kind": "grid"}, batch_size=0)


def test_a_group_of_13_in_a_grid_fails_alone(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    """Grid > 12 is a property of one group, not of the template: that group fails, its sibling is created."""
    items = {f"s1_{n}.png": item for n, item in enumerate(_tiles(world, *range(13)))}
    items |= {f"s2_{n}.png": item for n, item in enumerate(_tiles(world, 13, 14))}
    rule = {"kind": "key_pattern", "pattern": r"(?P<key>s\d+)_\d+"}
    result = create_data_groups.fn(admin, world.folder, items, rule, {"kind": "grid"})
    assert set(result.failed) == {"s1"}
    assert "group 's1' has 13 members; a grid holds at most 12" in result.failed["s1"]
    assert set(result.groups) == {"s2"} and "s1" not in _groups_in(hardened, world.folder)


def test_a_group_missing_a_role_of_the_layout_fails_alone(
    hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    front, rear, other_front = _tiles(world, 2, 3, 4)
    items = {"s3_front.png": front, "s3_rear.png": rear, "s4_front.png": other_front}
    layout = {
        "kind": "custom",
        "layout": {
            "direction": "column",
            "first": {"type": "data_unit", "key": "front"},
            "second": {"type": "data_unit", "key": "rear"},
            "split_percentage": 50,
        },
    }
    result = create_data_groups.fn(admin, world.folder, items, KEY_RULE, layout)
    assert set(result.failed) == {"s4"} and "group 's4' has no member for role(s) ['rear']" in result.failed["s4"]
    assert set(result.groups) == {"s3"} and "s4" not in _groups_in(hardened, world.folder)


def test_an_item_uuid_that_is_not_a_uuid_fails_its_group_alone(
    hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    items = {"s5_front.png": "zzz", "s6_front.png": _tiles(world, 5)[0]}
    result = create_data_groups.fn(admin, world.folder, items, KEY_RULE, {"kind": "grid"})
    assert (
        set(result.failed) == {"s5"}
        and "'s5_front.png' has item UUID 'zzz', which is not a UUID" in result.failed["s5"]
    )
    assert set(result.groups) == {"s6"} and "s5" not in _groups_in(hardened, world.folder)


def test_a_layout_nested_deeper_than_the_sandbox_allows_is_refused_and_named(
    hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    """Our planning leaves depth to Encord; the refusal comes back per group, naming the rule, and writes nothing."""
    tree: dict[str, Any] = {"type": "data_unit", "key": "k9"}
    for level in range(9):  # nine splits: ten levels of tiles, one role per tile
        first = {"type": "data_unit", "key": f"k{level}"}
        tree = {"direction": "row", "first": first, "second": tree, "split_percentage": 50}
    layout = {"kind": "custom", "layout": tree}
    items = {f"s7_k{n}.png": item for n, item in enumerate(_tiles(world, *range(10)))}
    with unchanged(hardened):
        result = create_data_groups.fn(admin, world.folder, items, KEY_RULE, layout)
    assert set(result.failed) == {"s7"} and "nests deeper than 8 levels" in result.failed["s7"]
    assert result.groups == {}


# --- identifiers: malformed, or naming nothing that exists ------------------------------------------------------


def test_a_folder_uuid_that_is_not_a_uuid_is_named(hardened: Sandbox, admin: EncordCredentials) -> None:
    with unchanged(hardened), _raises(ValueError, "folder_uuid 'not-a-uuid' is not a UUID"):
        create_data_groups.fn(admin, "not-a-uuid", {}, KEY_RULE, {"kind": "grid"})


def test_an_unknown_folder_is_named(hardened: Sandbox, admin: EncordCredentials) -> None:
    missing = str(uuid.uuid4())
    with unchanged(hardened), _raises(ResourceNotFoundError, f"storage folder {missing}", "does not exist"):
        create_data_groups.fn(admin, missing, {}, KEY_RULE, {"kind": "grid"})


def test_an_unknown_dataset_is_named(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    missing = str(uuid.uuid4())
    with unchanged(hardened), _raises(ResourceNotFoundError, f"dataset {missing} does not exist"):
        link_items_to_dataset.fn(admin, missing, _tiles(world, 0))


def test_a_dataset_hash_that_is_not_a_uuid_is_named(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    with unchanged(hardened), _raises(InvalidArgumentsError, "dataset 'nope' is not a valid UUID"):
        link_items_to_dataset.fn(admin, "nope", _tiles(world, 0))


def test_an_item_uuid_that_is_not_a_uuid_is_named_before_linking(
    hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    with unchanged(hardened), _raises(ValueError, "item 'xyz' is not a UUID"):
        link_items_to_dataset.fn(admin, world.dataset, [*_tiles(world, 0), "xyz"])


def test_an_unknown_project_is_named(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    missing = str(uuid.uuid4())
    with unchanged(hardened), _raises(ResourceNotFoundError, f"project {missing}", "does not exist"):
        attach_datasets.fn(admin, missing, [world.dataset])


def test_a_project_hash_that_is_not_a_uuid_is_named(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    with unchanged(hardened), _raises(ValueError, "project_hash 'zzz' is not a UUID"):
        attach_datasets.fn(admin, "zzz", [world.dataset])


def test_dataset_hashes_that_are_not_uuids_are_named(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    with unchanged(hardened), _raises(ValueError, "dataset hashes must be UUIDs, got ['abc']"):
        attach_datasets.fn(admin, world.project, ["abc"])


def test_an_unknown_project_to_export_is_named_and_nothing_is_written(
    hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    missing = str(uuid.uuid4())
    with unchanged(hardened), _raises(ResourceNotFoundError, f"project {missing}", "does not exist"):
        export_label_rows.fn(admin, missing, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_cloud_integration_is_named(
    hardened: Sandbox, admin: EncordCredentials, world: World, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    block = new_bucket("s3", request, {"a.png": samples.png()}, integration="no-such-integration")
    with unchanged(hardened), _raises(IntegrationNotFound, "'no-such-integration'"):
        register_bucket.fn(admin, block, world.folder, ledger_dir=tmp_path)


# --- credentials and signatures -----------------------------------------------------------------------------


def _rsa_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()


def _unregistered_ed25519() -> str:
    return Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()


CREDENTIAL_CASES: dict[str, tuple[Callable[[str, Path], EncordCredentials], type[Exception], tuple[str, ...]]] = {
    "no-key-configured": (
        lambda domain, _: EncordCredentials(domain=domain),
        ValueError,
        ("No Encord SSH private key is configured", "ssh_private_key", "ENCORD_SSH_KEY_FILE"),
    ),
    "key-file-missing": (
        lambda domain, tmp: EncordCredentials(ssh_private_key_path=tmp / "absent_ed25519", domain=domain),
        ValueError,
        ("absent_ed25519", "No such file or directory"),
    ),
    "key-that-is-not-ed25519": (
        lambda domain, _: EncordCredentials(ssh_private_key=SecretStr(_rsa_key()), domain=domain),
        ValueError,
        ("the ssh_private_key field", "is a RSAPrivateKey, not Ed25519"),
    ),
    "key-that-is-not-a-key": (
        lambda domain, _: EncordCredentials(ssh_private_key=SecretStr("ssh-ed25519 AAAA… not a key"), domain=domain),
        ValueError,
        ("the ssh_private_key field could not be loaded",),
    ),
}


@pytest.mark.parametrize("case", list(CREDENTIAL_CASES))
def test_unusable_credentials_are_refused_before_any_request(
    case: str, hardened: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCORD_SSH_KEY_FILE", raising=False)
    monkeypatch.delenv("ENCORD_SSH_KEY", raising=False)
    build, kind, fragments = CREDENTIAL_CASES[case]
    with unchanged(hardened), _raises(kind, *fragments):
        get_or_create_folder.fn(build(hardened.domain, tmp_path), f"never/{_token()}")


def test_a_domain_with_a_path_is_refused_naming_it() -> None:
    with _raises(ValidationError, "http://127.0.0.1:1/encord", "bare origin"):
        EncordCredentials(domain="http://127.0.0.1:1/encord")


def test_a_wrong_key_is_refused_naming_its_public_key(hardened: Sandbox) -> None:
    stranger = Ed25519PrivateKey.generate()
    pem = stranger.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()
    public_hex = stranger.public_key().public_bytes_raw().hex()
    credentials = EncordCredentials(ssh_private_key=SecretStr(pem), domain=hardened.domain)
    with unchanged(hardened), _raises(AuthenticationError, f"unknown public key '{public_hex}'"):
        get_or_create_folder.fn(credentials, f"never/{_token()}")


def test_an_expired_signature_is_refused_naming_its_time(
    hardened: Sandbox, admin: EncordCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose clock is an hour behind signs requests the sandbox takes for replays."""
    import encord.http.v2.request_signer as signer

    class SlowClock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> SlowClock:
            return super().now(tz) - timedelta(hours=1)  # type: ignore[return-value]

    monkeypatch.setattr(signer, "datetime", SlowClock)
    with unchanged(hardened), _raises(AuthenticationError, "signature is stale", "behind the server's clock") as err:
        get_or_create_folder.fn(admin, f"never/{_token()}")
    created = re.search(r"'created' is (\d+), (\d+) s behind", str(err.value))
    assert created is not None, err.value
    assert abs(int(created.group(1)) - (time.time() - 3600)) < 60 and 3540 < int(created.group(2)) < 3660


def test_the_state_check_sees_a_write(hardened: Sandbox, admin: EncordCredentials) -> None:
    """The catalogue's "nothing was written" is only worth something if a write is seen: one folder is."""
    with pytest.raises(AssertionError, match="folders: 1 rows added"), unchanged(hardened):
        admin.get_client().create_storage_folder(f"seen-{_token()}")


# --- names and paths ----------------------------------------------------------------------------------------

EMPTY_OR_UNSENDABLE_NAMES: dict[str, tuple[Callable[[EncordCredentials], Any], str]] = {
    "folder-path-empty": (lambda c: get_or_create_folder.fn(c, ""), "folder path ''"),
    "folder-path-with-an-empty-segment": (lambda c: get_or_create_folder.fn(c, "a//b"), "folder path 'a//b'"),
    "folder-path-not-utf8": (
        lambda c: get_or_create_folder.fn(c, os.fsdecode(b"caf\xe9/2026")),
        "folder path 'caf\\xe9/2026' is not valid UTF-8",
    ),
    "folder-path-with-dot-dot": (lambda c: get_or_create_folder.fn(c, "x/../y"), "has the segment '..'"),
    "folder-path-with-dot": (lambda c: get_or_create_folder.fn(c, "./z"), "has the segment '.'"),
    "folder-path-with-nul": (lambda c: get_or_create_folder.fn(c, "a\x00b"), "control character in the segment"),
    "dataset-title-blank": (lambda c: get_or_create_dataset.fn(c, "   "), "got '   '"),
    "project-title-blank": (lambda c: get_or_create_project.fn(c, ""), "got ''"),
}


@pytest.mark.parametrize("case", list(EMPTY_OR_UNSENDABLE_NAMES))
def test_an_empty_or_unsendable_name_is_refused(case: str, hardened: Sandbox, admin: EncordCredentials) -> None:
    call, fragment = EMPTY_OR_UNSENDABLE_NAMES[case]
    with unchanged(hardened), _raises(ValueError, fragment):
        call(admin)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the export destination that no export may reach."""
    (tmp_path / "outside").mkdir()
    return tmp_path / "outside"


EXPORT_PATHS: dict[str, tuple[dict[str, Any], str]] = {
    "prefix-climbing-out": ({"prefix": "../up"}, "export prefix '../up' has the segment '..'"),
    "prefix-absolute": ({"prefix": "/etc/cron.d"}, "export prefix '/etc/cron.d' is absolute"),
    "prefix-with-a-backslash": ({"prefix": "a\\..\\b"}, "'a\\\\..\\\\b'"),
    "prefix-with-a-control-character": ({"prefix": "a\x00b"}, "'a\\x00b'"),
    "branch-named-dot-dot": ({"filters": LabelRowFilters(branch_name="..")}, "branch name '..'"),
    "prefix-through-a-symlink-out": ({"prefix": "link"}, "outside the export directory"),
}


@pytest.mark.parametrize("case", list(EXPORT_PATHS))
def test_an_export_path_that_escapes_the_destination_is_refused(
    case: str, hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path, outside: Path
) -> None:
    arguments, fragment = EXPORT_PATHS[case]
    destination = tmp_path / "exports"
    destination.mkdir()
    (destination / "link").symlink_to(outside, target_is_directory=True)
    with unchanged(hardened), _raises(UnsafeExportPath, fragment):
        export_label_rows.fn(admin, world.project, destination, **arguments)
    assert [p.name for p in destination.iterdir()] == ["link"] and list(outside.iterdir()) == []


def test_a_bucket_url_given_as_a_local_destination_is_refused(
    hardened: Sandbox, admin: EncordCredentials, world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with unchanged(hardened), _raises(ValueError, "'s3://bucket/labels'"):
        export_label_rows.fn(admin, world.project, "s3://bucket/labels")
    assert list(tmp_path.iterdir()) == []


# --- local uploads: one bad file among good ones --------------------------------------------------------------


def _upload_with(admin: EncordCredentials, tmp_path: Path, bad: dict[str, bytes]) -> tuple[UploadResult, str]:
    media = tmp_path / "media"
    media.mkdir()
    (media / "good.png").write_bytes(samples.png(color=(1, 2, 3)))
    for name, data in bad.items():
        path = media / os.fsdecode(name.encode("utf-8", "surrogateescape"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    folder = get_or_create_folder.fn(admin, f"uploads/{_token()}")
    return upload_directory.fn(admin, folder, media), folder


BAD_FILES: dict[str, tuple[dict[str, bytes], str, str]] = {
    "corrupt-video": ({"clip.mp4": b"\x00\x00\x00\x18ftypmp42 garbage"}, "clip.mp4", "clip.mp4: not a readable video"),
    "text-that-is-not-utf8": ({"notes.txt": b"\xff\xfe caf\xe9"}, "notes.txt", "notes.txt: not a readable plainText"),
    "empty-file": ({"blank.png": b""}, "blank.png", "file is empty"),
    "dicom-missing-required-tags": (
        {"scan/slice-1.dcm": samples.dicom(omit=["Rows"])},
        "scan",
        "slice-1.dcm: DICOM file is missing required tags: Rows",
    ),
    "file-name-not-utf8": (
        {os.fsdecode(b"caf\xe9.png"): samples.png(color=(9, 9, 9))},
        "caf\\xe9.png",
        "the name 'caf\\xe9.png' is not valid UTF-8",
    ),
    "unsupported-file-type": ({"report.docx": b"PK\x03\x04"}, "report.docx", "unsupported file type '.docx'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_fails_alone_and_is_named(
    case: str, hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    bad, key, message = BAD_FILES[case]
    result, folder = _upload_with(admin, tmp_path, bad)
    assert list(result.items) == ["good.png"], result
    assert list(result.failed) == [key] and message in result.failed[key]
    assert _item_names(hardened, folder) == ["good.png"]  # the bad unit's reserved slots stay placeholders


def test_links_are_followed_only_within_the_source_and_each_directory_once(
    hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    """A link out of the source (here to this test's own file) is listed, never uploaded; a broken link is
    listed; a link to a directory inside, or back to the source itself (a loop), adds nothing twice."""
    media = tmp_path / "media"
    (media / "inner").mkdir(parents=True)
    (media / "good.png").write_bytes(samples.png(color=(5, 5, 5)))
    (media / "inner" / "a.png").write_bytes(samples.png(color=(6, 6, 6)))
    secret = tmp_path / "secret.png"
    secret.write_bytes(samples.png(color=(7, 7, 7)))
    (media / "shared.png").symlink_to(secret)
    (media / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (media / "also-inner").symlink_to(media / "inner", target_is_directory=True)
    (media / "inner" / "loop").symlink_to(media, target_is_directory=True)
    folder = get_or_create_folder.fn(admin, f"uploads/{_token()}")

    result = upload_directory.fn(admin, folder, media)

    assert sorted(result.items) == ["good.png", "inner/a.png"]
    assert result.failed == {
        "shared.png": f"a symbolic link to {secret}, outside the directory uploaded; not followed",
        "gone.png": "a broken symbolic link",
    }
    assert _item_names(hardened, folder) == ["a.png", "good.png"]


def test_a_directory_that_does_not_exist_is_named(
    hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    with unchanged(hardened), _raises(NotADirectoryError, str(tmp_path / "nowhere")):
        upload_directory.fn(admin, world.folder, tmp_path / "nowhere")


def test_an_ingest_checks_its_directory_and_folder_path_before_creating_the_folder(
    hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    with unchanged(hardened), _raises(NotADirectoryError, str(tmp_path / "nowhere"), "does not exist"):
        ingest.fn(LocalSource(directory=str(tmp_path / "nowhere")), f"new/{_token()}", credentials=admin)
    with unchanged(hardened), _raises(ValueError, "'x/../y'", "segment '..'"):
        ingest.fn(LocalSource(directory=str(tmp_path)), "x/../y", credentials=admin)


PATTERNS_AS_ONE_STRING: dict[str, tuple[Callable[[EncordCredentials, str, Path], Any], str]] = {
    "upload-exclude": (
        lambda c, folder, root: upload_directory.fn(c, folder, root, exclude="*.mp4"),
        "exclude='*.mp4'",
    ),
    "upload-image-groups": (
        lambda c, folder, root: upload_directory.fn(c, folder, root, image_groups="burst"),
        "image_groups='burst'",
    ),
}


@pytest.mark.parametrize("case", list(PATTERNS_AS_ONE_STRING))
def test_a_pattern_list_given_as_one_string_is_refused(
    case: str, hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    """Python sees "*.mp4" as the patterns "*", ".", "m"…, and "*" matches everything: refused, not guessed."""
    (tmp_path / "clip.png").write_bytes(samples.png())
    call, fragment = PATTERNS_AS_ONE_STRING[case]
    with unchanged(hardened), _raises(TypeError, fragment, "is one string"):
        call(admin, world.folder, tmp_path)


def test_an_empty_directory_uploads_nothing(
    hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    """Not an error: an empty input is a run with nothing to do, and it writes nothing."""
    with unchanged(hardened):
        result = upload_directory.fn(admin, world.folder, tmp_path)
    assert result == UploadResult()


# --- cloud registration: one bad object among good ones -----------------------------------------------------


@pytest.fixture(scope="module")
def s3_integration(hardened: Sandbox, request: pytest.FixtureRequest) -> str:
    return add_sandbox_integration(hardened, "s3", request)


@pytest.fixture(scope="module")
def local_integration(hardened: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("integration-root")
    (root / "red.png").write_bytes(samples.png())
    (tmp_path_factory.getbasetemp() / "secret.png").write_bytes(samples.png(color=(7, 7, 7)))
    title = f"local-{_token()}"
    hardened.add_integration(title, "local", root=str(root))
    return title, root


def _register(
    admin: EncordCredentials, request: pytest.FixtureRequest, integration: str, objects: dict[str, bytes],
    tmp_path: Path, **kwargs: Any,
) -> tuple[BucketRegistration, Any, str]:  # fmt: skip
    block = new_bucket("s3", request, {"good.png": samples.png(), **objects}, integration=integration)
    folder = get_or_create_folder.fn(admin, f"register/{_token()}")
    return register_bucket.fn(admin, block, folder, ledger_dir=tmp_path, **kwargs), block, folder


SKIPPED_OBJECTS: dict[str, tuple[str, bytes, str]] = {
    "empty-object": ("blank.png", b"", "the object is empty"),
    "unsupported-object-type": ("report.docx", b"PK\x03\x04", "unsupported file type '.docx'"),
    "key-over-300-characters": ("k" * 301 + ".png", samples.png(), "longer than Encord's 300-character limit"),
}


@pytest.mark.parametrize("case", list(SKIPPED_OBJECTS))
def test_an_object_that_cannot_be_registered_is_skipped_by_name(
    case: str, admin: EncordCredentials, s3_integration: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    key, data, reason = SKIPPED_OBJECTS[case]
    result, block, _ = _register(admin, request, s3_integration, {key: data}, tmp_path)
    assert list(result.created) == [block.object_url("good.png")]
    (skipped,) = result.skipped
    assert skipped.url == block.object_url(key) and reason in skipped.reason


def test_a_corrupt_object_fails_alone_and_is_named(
    hardened: Sandbox, admin: EncordCredentials, s3_integration: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    result, block, folder = _register(admin, request, s3_integration, {"clip.mp4": b"\x00\x00garbage"}, tmp_path)
    assert list(result.created) == [block.object_url("good.png")]
    (failure,) = result.unit_errors
    assert failure.urls == (block.object_url("clip.mp4"),) and "clip.mp4: not a readable video" in failure.error
    assert _item_names(hardened, folder) == ["good.png"]


def test_a_dicom_without_a_series_uid_is_skipped_by_name(
    admin: EncordCredentials, s3_integration: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    objects = {"scans/a.dcm": samples.dicom(omit=["SeriesInstanceUID"])}
    options = PlanOptions(dicom_series_by="series_uid")
    result, block, _ = _register(admin, request, s3_integration, objects, tmp_path, options=options)
    assert list(result.created) == [block.object_url("good.png")]
    assert result.skipped == (
        Skipped(block.object_url("scans/a.dcm"), "no SeriesInstanceUID could be read from the DICOM header"),
    )


def test_metadata_of_the_wrong_type_fails_its_object_alone(
    hardened: Sandbox, admin: EncordCredentials, world: World, s3_integration: str,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:  # fmt: skip
    options = PlanOptions(metadata_by_title={"bad.png": {"hd.count": "many"}})
    result, block, folder = _register(
        admin, request, s3_integration, {"bad.png": samples.png()}, tmp_path, options=options
    )
    assert list(result.created) == [block.object_url("good.png")]
    (failure,) = result.unit_errors
    assert failure.urls == (block.object_url("bad.png"),)
    assert "metadata key 'hd.count' value 'many' is not a number" in failure.error and "bad.png" in failure.error


def test_a_bucket_that_does_not_exist_is_named(
    hardened: Sandbox, admin: EncordCredentials, world: World, s3_integration: str,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:  # fmt: skip
    block = new_bucket("s3", request, {}, integration=s3_integration)
    block.bucket_name = "no-such-bucket-" + _token()
    with unchanged(hardened), _raises(FileNotFoundError, f"bucket '{block.bucket_name}' does not exist"):
        register_bucket.fn(admin, block, world.folder, ledger_dir=tmp_path)


def test_a_bucket_include_given_as_one_string_is_refused(
    hardened: Sandbox, admin: EncordCredentials, world: World, s3_integration: str,
    request: pytest.FixtureRequest, tmp_path: Path,
) -> None:  # fmt: skip
    block = new_bucket("s3", request, {"a.png": samples.png()}, integration=s3_integration)
    with unchanged(hardened), _raises(TypeError, "include='*.png' is one string"):
        register_bucket.fn(admin, block, world.folder, include="*.png", ledger_dir=tmp_path)


LOCAL_URL_CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "url-outside-the-integration-root": (lambda root: "file:///etc/hostname", "not a file under the integration root"),
    "path-traversal-in-a-registered-url": (
        lambda root: f"file://{root}/../secret.png",
        "not a file under the integration root",
    ),
    "url-of-another-kind-of-integration": (
        lambda root: "https://bucket.s3.amazonaws.com/red.png",
        "this is a s3 URL but the integration is local",
    ),
}


@pytest.mark.parametrize("case", list(LOCAL_URL_CASES))
def test_a_url_the_integration_cannot_reach_fails_alone_and_is_named(
    case: str, hardened: Sandbox, admin: EncordCredentials, local_integration: tuple[str, Path], tmp_path: Path
) -> None:
    title, root = local_integration
    build, reason = LOCAL_URL_CASES[case]
    bad_url = build(root)
    entries = [Entry("image", "red.png", (f"file://{root}/red.png",)), Entry("image", "bad.png", (bad_url,))]
    folder = get_or_create_folder.fn(admin, f"local/{_token()}")
    result = register_chunk.fn(admin, folder, title, entries, ledger_dir=tmp_path)
    assert list(result.created) == [f"file://{root}/red.png"]
    (failure,) = result.unit_errors
    assert failure.urls == (bad_url,) and reason in failure.error and bad_url.split("?")[0] in failure.error
    assert _item_names(hardened, folder) == ["red.png"]


def test_a_sequence_over_32767_frames_fails_alone_without_a_fetch(
    hardened: Sandbox, admin: EncordCredentials, local_integration: tuple[str, Path], tmp_path: Path
) -> None:
    title, root = local_integration
    frames = tuple(f"file://{root}/frames/{n:05d}.png" for n in range(MAX_SEQUENCE_FRAMES + 1))
    entries = [Entry("image", "red.png", (f"file://{root}/red.png",)), Entry("image_sequence", "long-drive", frames)]
    folder = get_or_create_folder.fn(admin, f"local/{_token()}")
    result = register_chunk.fn(admin, folder, title, entries, ledger_dir=tmp_path)
    assert list(result.created) == [f"file://{root}/red.png"]
    (failure,) = result.unit_errors
    assert "image sequence 'long-drive' has 32768 frames; the maximum is 32767" in failure.error


def test_the_planner_skips_a_sequence_over_32767_frames_by_directory() -> None:
    root = "https://bucket.s3.amazonaws.com/"
    records = (ObjectRecord(f"drive/{n:05d}.png", f"{root}drive/{n:05d}.png", size=1) for n in range(32_768))
    planned = list(plan_registration(records, root_url=root, options=PlanOptions(images="sequence")))
    assert planned == [Skipped(f"{root}drive/", "an image sequence of 32768 frames; Encord allows at most 32767")]


def test_the_planner_skips_a_url_outside_the_bucket_by_name() -> None:
    root = "https://bucket.s3.amazonaws.com/"
    stray = ObjectRecord("a.png", "https://elsewhere.s3.amazonaws.com/a.png", size=1)
    planned = list(plan_registration([stray], root_url=root))
    assert planned == [Skipped(stray.url, f"the URL is outside the integration's bucket ({root})")]


def test_a_title_that_is_not_utf8_is_refused_before_the_job_starts(
    hardened: Sandbox, admin: EncordCredentials, world: World, local_integration: tuple[str, Path], tmp_path: Path
) -> None:
    """A title read from a non-UTF-8 name reaches JSON as a lone surrogate; the sandbox refuses the job, naming it
    (it used to accept it, fail to store the unit, and leave the job pending for ever)."""
    title, root = local_integration
    entries = [Entry("image", os.fsdecode(b"caf\xe9.png"), (f"file://{root}/red.png",))]
    with unchanged(hardened), _raises(InvalidArgumentsError, "'caf\\udce9.png' is not valid Unicode"):
        register_chunk.fn(admin, world.folder, title, entries, ledger_dir=tmp_path)


def test_an_empty_chunk_is_refused_and_starts_no_job(
    hardened: Sandbox, admin: EncordCredentials, world: World, local_integration: tuple[str, Path], tmp_path: Path
) -> None:
    with unchanged(hardened), _raises(InvalidArgumentsError, "the upload job lists no files"):
        register_chunk.fn(admin, world.folder, local_integration[0], [], ledger_dir=tmp_path)


# --- metadata: schema declarations and manifests --------------------------------------------------------------

INVALID_DECLARATIONS: dict[str, tuple[Any, str]] = {
    "reserved-key": ({"keyframes": "number"}, "metadata key 'keyframes' is reserved"),
    "key-starting-with-a-dollar": ({"$price": "number"}, "metadata key '$price' must not start with '$'"),
    "unknown-type": ({"hd.colour": "colour"}, "metadata key 'hd.colour' has unknown type 'colour'"),
    "embedding-of-size-0": (
        {"hd.clip": {"type": "embedding", "size": 0}},
        "an embedding needs a size from 1 to 4096, got 0",
    ),
    "type-change-without-permission": (
        {"hd.count": {"type": "enum", "values": ["one"]}},
        "metadata key 'hd.count' is number in Encord but declared enum",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_DECLARATIONS))
def test_an_invalid_schema_declaration_is_refused(
    case: str, hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    declaration, fragment = INVALID_DECLARATIONS[case]
    with unchanged(hardened), _raises((SchemaDeclarationError, SchemaChangeRefused), fragment):
        apply_metadata_schema.fn(admin, declaration)


def test_a_schema_file_that_is_not_utf8_is_named(
    hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    path = tmp_path / "schema.yaml"
    path.write_bytes("hd.place: varchar\nhd.note: caf\xe9\n".encode("latin-1"))
    with unchanged(hardened), _raises(SchemaDeclarationError, str(path), "not UTF-8", "byte 30"):
        apply_metadata_schema.fn(admin, str(path))


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("schema.yaml", "hd.place: varchar\nhd.count: number\nhd.place: text\n", "'hd.place' appears twice"),
        ("schema.json", '{"hd.place": "varchar", "hd.place": "text"}', "'hd.place' appears twice"),
    ],
)
def test_a_schema_file_with_a_key_twice_is_refused_naming_it(
    name: str, text: str, fragment: str, hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    """YAML and JSON parsers keep the last of two equal keys; an additive schema could never undo the loss."""
    path = tmp_path / name
    path.write_text(text)
    with unchanged(hardened), _raises(SchemaDeclarationError, str(path), fragment):
        apply_metadata_schema.fn(admin, str(path))


def test_a_yaml_schema_names_the_line_of_the_repeated_key(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("hd.place: varchar\nhd.count: number\nhd.place: text\n")
    with _raises(SchemaDeclarationError, "(the second on line 3)"):
        schema_from_file(path)


def _manifest(tmp_path: Path, text: str, name: str = "manifest.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


INVALID_ROWS: dict[str, tuple[str, str, str]] = {
    "value-of-the-wrong-type": ("hd.count", "many", "'many' is not a number"),
    "unknown-enum-option": ("hd.weather", "snow", "'snow' is not one of the enum options ['rain', 'sun']"),
    "embedding-of-the-wrong-length": ("hd.vec", '"[1, 2, 3]"', "has 3 numbers; the embedding has 4"),
}


@pytest.mark.parametrize("case", list(INVALID_ROWS))
def test_a_manifest_value_that_does_not_fit_the_schema_is_named_and_not_written(
    case: str, hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    key, value, message = INVALID_ROWS[case]
    manifest = _manifest(tmp_path, f"name,{key}\ntile-00.png,{value}\n")
    with unchanged(hardened):
        result = import_metadata.fn(admin, manifest, folder_uuid=world.folder)
    (error,) = result.invalid
    assert (error.row, error.item, error.key) == (1, "tile-00.png", key) and message in error.message
    assert result.updated == 0


def test_a_manifest_row_with_a_bad_uuid_is_named(
    hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path, "uuid,hd.count\nnot-a-uuid,3\n")
    with unchanged(hardened):
        result = import_metadata.fn(admin, manifest, key_by="uuid", folder_uuid=world.folder)
    (error,) = result.invalid
    assert error.row == 1 and "'not-a-uuid' is not a UUID" in error.message


def test_good_rows_are_written_and_the_bad_row_is_named(
    hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    """A wrong value in one row of many is a per-row error: the other rows are written, the bad item is untouched."""
    manifest = _manifest(tmp_path, "name,hd.count\ntile-01.png,4\ntile-02.png,four\n")
    result = import_metadata.fn(admin, manifest, folder_uuid=world.folder)
    assert result.updated == 1 and [(e.row, e.item) for e in result.invalid] == [(2, "tile-02.png")]
    rows = hardened.backend.store.query(
        "SELECT name, client_metadata FROM items WHERE folder = ? AND name IN ('tile-01.png', 'tile-02.png')",
        (world.folder,),
    )
    metadata = {r["name"]: r["client_metadata"] for r in rows}
    assert '"hd.count": 4' in metadata["tile-01.png"] and "hd.count" not in metadata["tile-02.png"]


def test_an_overwrite_import_keeps_the_content_identity_and_a_re_run_creates_nothing(
    hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    """Overwriting an item's metadata used to drop its content digest, and the next ingest uploaded it again."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "cam.png").write_bytes(samples.png(color=(33, 44, 55)))
    folder = get_or_create_folder.fn(admin, f"uploads/{_token()}")
    upload_directory.fn(admin, folder, media)
    manifest = _manifest(tmp_path, "name,hd.count\ncam.png,7\n")
    assert import_metadata.fn(admin, manifest, folder_uuid=folder, mode="overwrite").updated == 1

    again = upload_directory.fn(admin, folder, media)

    assert again.skipped == ["cam.png"] and _item_names(hardened, folder) == ["cam.png"]


def test_a_manifest_column_with_prefect_encords_own_key_is_refused_per_row(
    hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path, "name,prefect_encord.sha256,hd.count\ntile-00.png,forged,3\n")
    with unchanged(hardened):
        result = import_metadata.fn(admin, manifest, folder_uuid=world.folder)
    (error,) = result.invalid
    assert (error.row, error.key) == (1, "prefect_encord.sha256") and "own key" in error.message


UNREADABLE_MANIFESTS: dict[str, tuple[str, bytes, dict[str, Any], tuple[str, ...]]] = {
    "manifest-not-utf8": (
        "manifest.csv",
        "name,hd.note\ntile-00.png,caf\xe9\n".encode("latin-1"),
        {},
        ("manifest.csv is not UTF-8 text", "line 2"),
    ),
    "manifest-without-its-key-column": (
        "manifest.csv",
        b"file,hd.count\ntile-00.png,3\n",
        {},
        ("has no 'name' column", "['file', 'hd.count']"),
    ),
    "manifest-of-unknown-format": (
        "manifest.xlsx",
        b"PK\x03\x04",
        {},
        ("manifest.xlsx", "cannot tell the manifest format"),
    ),
    "manifest-that-is-not-parquet": (
        "manifest.parquet",
        b"not parquet",
        {},
        ("manifest.parquet is not a readable Parquet",),
    ),
    "manifest-that-is-not-json": ("manifest.json", b'{"tile-00.png": ', {}, ("manifest.json is not valid JSON",)),
    "manifest-with-an-item-twice": (
        "manifest.json",
        b'{"tile-00.png": {"hd.count": 1}, "tile-00.png": {"hd.count": 2}}',
        {},
        ("manifest.json is not valid JSON", "'tile-00.png' appears twice"),
    ),
    "bundle-size-of-zero": ("manifest.csv", b"name\n", {"bundle_size": 0}, ("bundle_size 0",)),
}


@pytest.mark.parametrize("case", list(UNREADABLE_MANIFESTS))
def test_a_manifest_that_cannot_be_read_is_refused_and_named(
    case: str, hardened: Sandbox, admin: EncordCredentials, world: World, tmp_path: Path
) -> None:
    name, data, kwargs, fragments = UNREADABLE_MANIFESTS[case]
    (tmp_path / name).write_bytes(data)
    kind = ValueError if kwargs else ManifestError  # an argument, or the file itself
    with unchanged(hardened), _raises(kind, *fragments):
        import_metadata.fn(admin, tmp_path / name, folder_uuid=world.folder, **kwargs)


def test_item_metadata_outside_the_schema_is_refused_by_the_sandbox(
    hardened: Sandbox, admin: EncordCredentials, world: World
) -> None:
    """Through the SDK (our import checks first, so it never sends this): Encord's own check, named."""
    item = admin.get_client().get_storage_item(_tiles(world, 9)[0])
    with (
        unchanged(hardened),
        _raises(InvalidArgumentsError, "metadata key 'hd.weather' value 'snow'", "['rain', 'sun']"),
    ):
        item.update(client_metadata={"hd.weather": "snow"})


# --- oversized requests ------------------------------------------------------------------------------------


def test_a_link_bundle_over_1000_is_refused(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    with unchanged(hardened), _raises(ValueError, "bundle_size 1001"):
        link_items_to_dataset.fn(admin, world.dataset, _tiles(world, 0), bundle_size=1001)


def test_a_deletion_batch_over_1000_is_refused(hardened: Sandbox, admin: EncordCredentials, world: World) -> None:
    with unchanged(hardened), _raises(ValueError, "batch_size 1001"):
        delete_items.fn(admin, _tiles(world, 0), batch_size=1001)


@pytest.fixture(autouse=True)
def _counts_never_shrink(hardened: Sandbox) -> Iterator[None]:
    """No bad input may ever delete anything: a cheap guard around every case."""
    before = counts(hardened)
    yield
    after = counts(hardened)
    shrunk = {t: (before[t], after.get(t, 0)) for t in before if after.get(t, 0) < before[t]}
    assert not shrunk, f"rows disappeared: {shrunk}"
