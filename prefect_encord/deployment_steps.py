"""Steps for ``prefect.yaml``: what ``prefect deploy`` runs to fill in a deployment (see deployments/prefect.yaml).

A deployment's parameter may reference a saved block by slug or by id, and runs resolve either; but the
Prefect UI's block picker shows only a reference by id, and shows one by slug as an empty picker, so a person
filling the Custom Run form would think no credentials were set. :func:`block_reference` looks the id up
when the deployment is made.
"""

from __future__ import annotations

from typing import Any, cast


def block_reference(block: str) -> dict[str, Any]:
    """``{"reference": {"$ref": {"block_document_id": ...}}}`` for the saved ``block`` ('block-type-slug/name');
    a parameter set to ``"{{ <step id>.reference }}"`` gets the reference itself.

    Raises:
        ValueError: Naming the block, if it is not ``slug/name`` or no such block is saved.
    """
    from prefect.blocks.core import Block

    slug, _, name = block.partition("/")
    if not slug or not name:
        raise ValueError(f"block {block!r} must be 'block-type-slug/name', e.g. 'encord-credentials/encord'")
    try:
        saved = cast(Block, Block.load(block))  # called sync, it returns the block itself
    except ValueError as missing:  # Prefect's "Unable to find block document named ..."
        raise ValueError(f"no saved block {block!r}: save it before deploying (see the README)") from missing
    return {"reference": {"$ref": {"block_document_id": str(saved._block_document_id)}}}
