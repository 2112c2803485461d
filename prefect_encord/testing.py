"""The offline Encord sandbox, seen from Prefect: its credentials as an ``EncordCredentials`` block.

The sandbox is a distribution of its own (``encord-sandbox``, installed by ``pip install
'prefect-encord[sandbox]'``) that knows nothing of Prefect; this module is the one place the plugin
reaches it, and it imports it only when asked, so no plugin command pays for FastAPI or the media probes.

Example:
    ```python
    from encord_sandbox import Sandbox
    from prefect_encord.testing import credentials_block

    with Sandbox(".sandbox") as sb:
        credentials_block(sb).save("encord-sandbox", overwrite=True)
    ```
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.runtime.extras import require

if TYPE_CHECKING:
    from encord_sandbox import Sandbox


def credentials_block(sandbox: Sandbox) -> EncordCredentials:
    """An ``EncordCredentials`` block signing in as the sandbox's admin (its key path, its domain)."""
    credentials = sandbox.credentials()
    return EncordCredentials(ssh_private_key_path=credentials.ssh_private_key_path, domain=credentials.domain)


def sandbox_class(purpose: str = "the offline Encord sandbox") -> type[Sandbox]:
    """The sandbox's ``Sandbox`` class, or an ImportError naming the ``sandbox`` extra (and ``purpose``)."""
    module = require("encord_sandbox", extra="sandbox", purpose=purpose)
    sandbox: type[Sandbox] = module.Sandbox
    return sandbox


def sandbox_samples(purpose: str) -> ModuleType:
    """The sandbox's generators of small real media (PNG, MP4, PDF, DICOM…), or an ImportError naming the extra."""
    return require("encord_sandbox.samples", extra="sandbox", purpose=purpose)
