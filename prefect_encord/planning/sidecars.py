"""Metadata sidecars: an object ``x.jpg.metadata.json`` beside ``x.jpg`` holds ``x.jpg``'s custom metadata (pure).

Encord's cloud-synced folders read such sidecars (``SidecarMatcherSuffix``, suffix ``.metadata.json`` by default,
configurable; docs.encord.com, "Cloud-synced folders"): the file's JSON object becomes the custom metadata of the
object whose key is the sidecar's without the suffix, and the sidecar is never an item itself. A registration
into an ordinary folder does the same here: sidecars are told apart as the bucket is listed, kept out of the
plan, and applied once their object's item exists, checked against the metadata schema like a manifest's row.
A sidecar is applied again only when it changes (its size and ETag), so a re-run reads none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prefect_encord.limits import SIDECAR_SUFFIX_LENGTH
from prefect_encord.planning.bounded_json import BodyRefused, check_depth
from prefect_encord.planning.objects import ObjectRecord

#: Encord's default suffix, and ours.
DEFAULT_SUFFIX = ".metadata.json"
#: The largest sidecar read: custom metadata is a few keys, and a sidecar's bytes are held while it is checked.
MAX_SIDECAR_BYTES = 1024 * 1024


@dataclass
class SidecarOutcome:
    """What applying the pending sidecars did: items updated or already as their sidecar says, sidecars that
    failed (URL → why) and sidecars whose object has no item (URL → the object's URL)."""

    updated: int = 0
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    orphaned: dict[str, str] = field(default_factory=dict)


class SidecarError(ValueError):
    """A sidecar that is not one JSON object within the limits; the message says what is wrong."""


def check_suffix(suffix: str) -> str:
    """``suffix``, if it can mark sidecars: 1 to 128 characters, no ``/`` (a sidecar sits beside its object).

    Raises:
        ValueError: Naming the suffix and the rule it breaks.
    """
    low, high = SIDECAR_SUFFIX_LENGTH
    if not low <= len(suffix) <= high:
        raise ValueError(f"sidecar suffix {suffix!r} must be {low} to {high} characters (Encord's rule)")
    if "/" in suffix:
        raise ValueError(f"sidecar suffix {suffix!r} must not contain '/': a sidecar sits beside its object")
    return suffix


def sidecar_target(key: str, suffix: str) -> str | None:
    """The key of the object ``key`` describes, if ``key`` is a sidecar (``suffix`` ends it, after a name)."""
    if not suffix or not key.endswith(suffix):
        return None
    target = key[: -len(suffix)]
    return target if target and not target.endswith("/") else None


def sidecar_fingerprint(record: ObjectRecord) -> str:
    """What tells a sidecar's versions apart: its size and ETag as listed (or as looked up: the same)."""
    return f"{record.size}\t{record.etag}"


def parse_sidecar(data: bytes) -> dict[str, Any]:
    """The metadata a sidecar holds: one JSON object.

    Raises:
        SidecarError: If it is larger than :data:`MAX_SIDECAR_BYTES`, nested too deep, not UTF-8 JSON, or not an
            object (a list or a number names no keys).
    """
    if len(data) > MAX_SIDECAR_BYTES:
        raise SidecarError(f"it is {len(data):,} bytes, more than the {MAX_SIDECAR_BYTES:,} a sidecar may hold")
    try:
        check_depth(data)
        document = json.loads(data)
    except BodyRefused as exc:
        raise SidecarError(str(exc).replace("the body", "it")) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"it is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SidecarError(f"it holds a JSON {type(document).__name__}, not an object of metadata keys and values")
    return document
