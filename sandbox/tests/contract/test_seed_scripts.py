"""The seed document's own data-group scripts, run unchanged against the sandbox.

``examples/seed_data_groups/*.py`` are the example scripts of ``data-groups.txt`` (grid, carousel,
custom layout, "Get Data Group data units", "Get Data Group information") copied line for line; only
their configuration lines read the environment (key path, IDs, file UUIDs, domain). Each runs as its
own process, as a user would run it, against a folder, dataset and project prepared here; the test
then checks what it printed and what it left in the sandbox.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import pytest
from encord import EncordUserClient
from encord.constants.enums import DataType
from encord.objects.metadata import DataGroupMetadata
from encord.objects.spaces.base_space import Space
from encord.objects.spaces.types import DataGroupMetadata as SpaceDataGroupMetadata
from encord.orm.dataset import DatasetType
from encord.orm.group_layout import DataUnitTile, LayoutGrid, LayoutSettings, TileSettings
from encord.orm.storage import DataGroupCustom, DataGroupGrid, StorageItemType
from encord.storage import StorageFolder, StorageItem
from encord_sandbox.server import Sandbox

SCRIPTS = Path(__file__).resolve().parents[2] / "examples" / "seed_data_groups"
SEED_NAMES = ["grid", "carousel", "custom", "data_group_data_units", "data_group_information"]
CHILD = re.compile(r"name='([^']*)', layout_key='([^']*)'")


def _layout_key(space: Space) -> str | None:
    assert isinstance(space.metadata, SpaceDataGroupMetadata), space.metadata
    return space.metadata.layout_key


def _token() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Run:
    """One script's configuration and what its process did."""

    env: dict[str, str]
    returncode: int = -1
    stdout: str = ""
    stderr: str = ""
    context: dict[str, object] = field(default_factory=dict)


@pytest.fixture(scope="module")
def files(client: EncordUserClient, media_dir: Path) -> list[tuple[UUID, str]]:
    """Twelve files of mixed types (the grid and carousel seeds put four in each of three groups)."""
    folder = client.create_storage_folder(f"seed-files-{_token()}")
    sources = ["red.png", "clip.mp4", "notes.txt", "tone.wav", "blue.png", "report.pdf", "green.jpg"]
    made = []
    for index in range(12):
        source = sources[index % len(sources)]
        title = f"file-{index:02d}{Path(source).suffix}"
        uploads: dict[str, Callable[..., UUID]] = {
            ".png": folder.upload_image,
            ".jpg": folder.upload_image,
            ".mp4": folder.upload_video,
            ".txt": folder.upload_text,
            ".wav": folder.upload_audio,
            ".pdf": folder.upload_pdf,
        }
        made.append((uploads[Path(source).suffix](media_dir / source, title=title), title))
    return made


def _workspace(client: EncordUserClient, name: str) -> dict[str, str]:
    """An empty folder for the script's groups, an empty dataset and a project over it."""
    folder = client.create_storage_folder(f"seed-{name}-{_token()}")
    dataset = client.create_dataset(f"seed-{name}-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    project = client.create_project(f"seed-{name}-{_token()}", [dataset])
    return {"FOLDER_ID": str(folder.uuid), "DATASET_ID": dataset, "PROJECT_ID": project}


@pytest.fixture(scope="module")
def runs(sandbox: Sandbox, client: EncordUserClient, files: list[tuple[UUID, str]]) -> Iterator[dict[str, Run]]:
    """Prepare every script's sandbox state, then run the five scripts side by side."""
    base = {
        **os.environ,
        "ENCORD_SSH_KEY_FILE": str(sandbox.private_key_path),
        "ENCORD_DOMAIN": sandbox.domain,
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONWARNINGS": "ignore",
    }
    ids = ",".join(str(u) for u, _ in files)
    runs = {
        "grid": Run({**base, **_workspace(client, "grid"), "FILE_IDS": ids}),
        "carousel": Run({**base, **_workspace(client, "carousel"), "FILE_IDS": ids}),
        # The custom seed's "instructions" tile is the text file, its "image" tile the image.
        "custom": Run({**base, **_workspace(client, "custom"), "FILE_IDS": f"{files[2][0]},{files[0][0]}"}),
    }

    source = client.create_storage_folder(f"seed-units-{_token()}")
    members = [files[0], files[1], files[3]]
    (group,) = source.create_data_groups(
        [DataGroupGrid(name=f"units-{_token()}", layout_contents=[u for u, _ in members])]
    )
    runs["data_group_data_units"] = Run({**base, "DATA_GROUP_ID": str(group)}, context={"members": members})

    info = client.create_storage_folder(f"seed-info-{_token()}")
    info.create_data_group(
        DataGroupCustom(
            name="info-group",
            layout=LayoutGrid(
                direction="column",
                first=DataUnitTile(key="instructions"),
                second=DataUnitTile(key="image"),
                split_percentage=40,
            ),
            layout_contents={"instructions": files[2][0], "image": files[0][0]},
            settings=LayoutSettings(tile_settings={"instructions": TileSettings(is_read_only=True)}),
        )
    )
    runs["data_group_information"] = Run({**base, "FOLDER_ID": str(info.uuid)}, context={"folder": info})

    def execute(name: str) -> None:
        run = runs[name]
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / f"{name}.py")],
            env=run.env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=180,
            check=False,
        )
        run.returncode, run.stdout, run.stderr = done.returncode, done.stdout, done.stderr

    with ThreadPoolExecutor(max_workers=len(SEED_NAMES)) as pool:
        list(pool.map(execute, SEED_NAMES))
    yield runs


def _succeeded(run: Run) -> list[str]:
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def _uuids(text: str) -> list[UUID]:
    return [UUID(u) for u in re.findall(r"UUID\('([0-9a-f-]{36})'\)", text)]


def test_every_seed_script_is_here() -> None:
    assert sorted(p.stem for p in SCRIPTS.glob("*.py")) == sorted(SEED_NAMES)
    for name in SEED_NAMES:
        text = (SCRIPTS / f"{name}.py").read_text()
        assert "00000000-0000-0000-0000-000000000000" not in text  # placeholders were all replaced
        assert 'os.environ["ENCORD_SSH_KEY_FILE"]' in text
        assert 'os.environ.get("ENCORD_DOMAIN", "https://api.encord.com")' in text


@pytest.mark.parametrize(
    ("name", "prefix", "banner"),
    [("grid", "group-grid", "✅ Created groups:"), ("carousel", "group-carousel", "✅ Created carousel groups:")],
    ids=["grid", "carousel"],
)
def test_grid_and_carousel_seeds(
    name: str, prefix: str, banner: str, runs: dict[str, Run], client: EncordUserClient, files: list[tuple[UUID, str]]
) -> None:
    run = runs[name]
    lines = _succeeded(run)
    assert lines[0].startswith(banner)
    created = _uuids(lines[0])
    assert len(created) == 3

    folder = client.get_storage_folder(run.env["FOLDER_ID"])
    groups = {g.uuid: g for g in folder.list_items(item_types=[StorageItemType.GROUP])}
    assert sorted(groups) == sorted(created)
    assert sorted(g.name for g in groups.values()) == [f"{prefix}-00{i}" for i in (1, 2, 3)]
    assert all(g.client_metadata == {"key": "value"} for g in groups.values())

    # One printed children list per group row: the group's four files in order, keyed "0".."3".
    printed = sorted(CHILD.findall(line) for line in lines[1:])
    expected = sorted([(files[4 * g + i][1], str(i)) for i in range(4)] for g in range(3))
    assert printed == expected

    dataset = client.get_dataset(run.env["DATASET_ID"])
    assert sorted(r.title for r in dataset.data_rows) == sorted(g.name for g in groups.values())
    project = client.get_project(run.env["PROJECT_ID"])
    rows = project.list_label_rows_v2()
    assert sorted((r.data_title, r.data_type) for r in rows) == [(f"{prefix}-00{i}", DataType.GROUP) for i in (1, 2, 3)]
    assert all(r.label_hash is not None for r in rows)  # the script's initialise_labels() created them


def test_custom_layout_seed(runs: dict[str, Run], client: EncordUserClient, files: list[tuple[UUID, str]]) -> None:
    run = runs["custom"]
    assert _succeeded(run) == []  # the seed prints nothing

    folder = client.get_storage_folder(run.env["FOLDER_ID"])
    (group,) = folder.list_items(item_types=[StorageItemType.GROUP])
    assert group.name == "example-custom-group"
    summary = group.get_summary().data_group
    assert summary is not None
    assert {k: v.uuid for k, v in summary.layout_contents.items()} == {
        "instructions": files[2][0],
        "image": files[0][0],
    }

    assert [r.title for r in client.get_dataset(run.env["DATASET_ID"]).data_rows] == ["example-custom-group"]
    project = client.get_project(run.env["PROJECT_ID"])
    (row,) = project.list_label_rows_v2()
    assert sorted(r.data_title for r in project.list_label_rows_v2(include_children=True)) == sorted(
        ["example-custom-group", files[2][1], files[0][1]]
    )
    row.initialise_labels()
    assert isinstance(row.metadata, DataGroupMetadata)
    assert [(c.name, c.layout_key) for c in row.metadata.children] == [
        (files[2][1], "instructions"),
        (files[0][1], "image"),
    ]
    assert sorted(str(_layout_key(s)) for s in row.get_spaces()) == ["image", "instructions"]


def test_get_data_group_data_units_seed(runs: dict[str, Run]) -> None:
    run = runs["data_group_data_units"]
    members: list[tuple[UUID, str]] = run.context["members"]  # type: ignore[assignment]
    group = run.env["DATA_GROUP_ID"]
    lines = _succeeded(run)
    assert re.fullmatch(rf"Data Group: units-[0-9a-f]{{8}} \({group}\)", lines[0])
    assert lines[1:] == [f"- UUID: {u}, Name: {n}" for u, n in members]


def test_get_data_group_information_seed(runs: dict[str, Run], files: list[tuple[UUID, str]]) -> None:
    run = runs["data_group_information"]
    lines = _succeeded(run)
    assert len(lines) == 3

    folder: StorageFolder = run.context["folder"]  # type: ignore[assignment]
    (group,) = folder.list_items(item_types=[StorageItemType.GROUP])
    assert isinstance(group, StorageItem)
    summary = group.get_summary().data_group
    assert summary is not None
    # The script printed exactly what the SDK reads in this process...
    assert lines == [str(summary.layout_contents), str(summary.layout), str(summary.layout_settings)]
    # ...which is the layout the group was created with.
    contents = dict(re.findall(r"'(\w+)': StorageItemGroupChild\(uuid=UUID\('([0-9a-f-]{36})'\)\)", lines[0]))
    assert contents == {"instructions": str(files[2][0]), "image": str(files[0][0])}
    assert "direction='column'" in lines[1] and "split_percentage=40" in lines[1]
    assert "is_read_only=True" in lines[2]
