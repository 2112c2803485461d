"""An unreadable directory or file in the source is listed as a failure, never dropped silently.

Permissions bind nobody who may override them, and CI runs as root: the upload then runs in a child process
without the capabilities that let root read what it may not (``setpriv``, from Debian's util-linux, drops
``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH``). The child reports its result as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from encord_sandbox import samples
from encord_sandbox.server import Sandbox

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.tasks.folders import get_or_create_folder

CHILD = """
import json, sys
from pydantic import SecretStr
from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.tasks.uploads import upload_directory
domain, key, folder, media = sys.argv[1:]
credentials = EncordCredentials(domain=domain, ssh_private_key_path=key)
result = upload_directory.fn(credentials, folder, media)
print(json.dumps({"items": sorted(result.items), "failed": result.failed}))
"""
WITHOUT_OVERRIDES = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                     "--bounding-set=-dac_override,-dac_read_search"]  # fmt: skip


def test_unreadable_directories_and_files_are_listed_not_dropped(
    hardened: Sandbox, admin: EncordCredentials, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    (media / "locked").mkdir(parents=True)
    (media / "good.png").write_bytes(samples.png(color=(1, 2, 3)))
    (media / "locked" / "hidden-away.png").write_bytes(samples.png(color=(4, 5, 6)))
    (media / "secret.png").write_bytes(samples.png(color=(7, 8, 9)))
    (media / "locked").chmod(0o000)
    (media / "secret.png").chmod(0o000)
    folder = get_or_create_folder.fn(admin, "unreadable-entries")
    child = [sys.executable, "-c", CHILD, hardened.domain, str(hardened.private_key_path), folder, str(media)]

    done = subprocess.run([*(WITHOUT_OVERRIDES if os.geteuid() == 0 else []), *child], capture_output=True,
                          text=True, timeout=300)  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["items"] == ["good.png"]
    assert result["failed"] == {
        "locked": "cannot read the directory: Permission denied",
        "secret.png": "cannot read: Permission denied",
    }
