"""The client-metadata keys prefect-encord writes on an item it uploads: its path relative to the directory and
its content digest, which tell a re-run which item a file already is (:mod:`.identity`)."""

from __future__ import annotations

OWN_KEY_PREFIX = "prefect_encord."
"""Client-metadata keys of this namespace are prefect-encord's own: manifests cannot write them, and an
``overwrite`` import keeps them (see :func:`prefect_encord.planning.metadata_values.new_metadata`)."""

IDENTITY_KEY = OWN_KEY_PREFIX + "sha256"
"""Client-metadata key holding a unit's content digest."""

PATH_KEY = OWN_KEY_PREFIX + "path"
"""Client-metadata key holding a unit's path relative to the uploaded directory."""


def identity_metadata(key: str, digest: str) -> dict[str, str]:
    """The client metadata that names a unit's item: its path and its content digest."""
    return {PATH_KEY: key, IDENTITY_KEY: digest}
