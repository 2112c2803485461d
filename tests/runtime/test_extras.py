"""A missing extra is one clear message naming it, raised before anything is written; the rest keeps working.

Each case runs in a fresh interpreter in which the extra's packages cannot be imported (a meta-path finder
refuses them, as an environment without them would), so the plugin's real import paths are exercised.
The footprint benchmark (``benchmarks/footprint.py``) checks the same on real venvs without the extras.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from encord.orm.dataset import DatasetType
from encord_sandbox import Sandbox

_HIDE = """
import importlib.abc, sys
HIDDEN = {hidden!r}
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
"""


def run_without(hidden: set[str], code: str, **env: str) -> subprocess.CompletedProcess[str]:
    program = _HIDE.format(hidden=sorted(hidden)) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_a_cloud_block_without_its_extra_names_it_and_the_others_keep_working() -> None:
    done = run_without(
        {"prefect_gcp", "google"},
        """
        import prefect_encord
        from prefect_encord import EncordAzureIntegration, EncordCredentials, EncordS3Integration
        from prefect_encord.blocks import load_cloud_block
        from prefect_encord.runtime.extras import MissingExtraError
        print("ok", EncordS3Integration.__name__, EncordAzureIntegration.__name__, EncordCredentials.__name__)
        print("registered", sorted(n for n in dir(prefect_encord) if n.startswith("Encord")))
        for attempt in (lambda: prefect_encord.EncordGcsIntegration,
                        lambda: load_cloud_block("encord-gcs-integration/raw")):
            try:
                attempt()
            except MissingExtraError as error:
                print("error", error)
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok EncordS3Integration EncordAzureIntegration EncordCredentials"
    assert "EncordGcsIntegration" not in lines[1] and "EncordS3Integration" in lines[1]
    errors = [line for line in lines if line.startswith("error ")]
    assert len(errors) == 2, done.stdout
    for error in errors:  # one line, naming the block, the extra and the install command
        assert "EncordGcsIntegration needs the 'gcs' extra" in error
        assert "pip install 'prefect-encord[gcs]'" in error


def test_a_parquet_manifest_without_pyarrow_is_refused_as_a_parameter(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("name,k\na.png,1\n")
    done = run_without(
        {"pyarrow"},
        f"""
        from prefect_encord.flows.parameters import MetadataStep
        from prefect_encord.planning.manifest_readers import read_manifest
        print("csv rows", len(list(read_manifest({str(csv)!r}, "name"))))
        MetadataStep(manifest="items.parquet")
        """,
    )
    assert "csv rows 1" in done.stdout
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "MissingExtraError: Reading the Parquet manifest items.parquet needs the 'parquet' extra" in last
    assert "pip install 'prefect-encord[parquet]'" in last


def test_a_coco_export_without_the_coco_extra_fails_before_writing(sandbox: Sandbox, tmp_path: Path) -> None:
    client = sandbox.credentials().get_client()
    dataset = client.create_dataset("coco-extra", DatasetType.CORD_STORAGE)
    project = client.create_project("coco-extra", [dataset.dataset_hash])
    destination = tmp_path / "exports"
    credentials = sandbox.credentials()
    done = run_without(
        {"pycocotools", "shapely", "cv2"},
        f"""
        from pathlib import Path
        from prefect_encord.blocks.credentials import EncordCredentials
        from prefect_encord.tasks.exports import export_label_rows
        credentials = EncordCredentials(ssh_private_key_path=Path({str(credentials.ssh_private_key_path)!r}),
                                        domain={credentials.domain!r})
        export_label_rows.fn(credentials, {project!r}, {str(destination)!r}, coco=True)
        """,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "A COCO export (coco=True) needs the 'coco' extra" in last
    assert "pip install 'prefect-encord[coco]'" in last
    assert not destination.exists()


def test_the_main_command_without_credentials_or_sandbox_says_how_to_get_one(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    env = {"PREFECT_HOME": str(tmp_path / "prefect-home"), "ENCORD_SSH_KEY_FILE": "", "ENCORD_SSH_KEY": ""}
    done = run_without(
        {"encord_sandbox"},
        f"""
        import sys
        from prefect_encord.cli.main import main
        sys.exit(main(["ingest", {str(tmp_path / "media")!r}, "--home", {str(tmp_path / "home")!r}]))
        """,
        **env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "needs the 'sandbox' extra" in message and "pip install 'prefect-encord[sandbox]'" in message
    assert "ENCORD_SSH_KEY_FILE" in message
    assert not (tmp_path / "home").exists()


def test_no_plugin_entry_point_loads_the_sandbox_or_heavy_extras() -> None:
    heavy = ["fastapi", "uvicorn", "av", "pypdf", "cv2", "pycocotools", "encord_sandbox", "pyarrow"]
    code = f"""
        import json, sys
        import prefect_encord, prefect_encord.blocks, prefect_encord.flows.ingest
        from prefect_encord.cli.main import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))))
        """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("extra", ["s3", "gcs", "azure", "coco", "parquet", "sandbox"])
def test_every_extra_is_declared_in_the_package_metadata(extra: str) -> None:
    from importlib.metadata import metadata

    assert extra in metadata("prefect-encord").get_all("Provides-Extra", [])
