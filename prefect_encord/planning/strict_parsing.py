"""JSON and YAML that refuse a repeated key (pure), for the files users write by hand.

Both parsers keep the last of two equal keys without a word, so a schema that declares ``weather`` twice, or a
manifest record with two ``count`` values, would silently lose one; an additive schema cannot even undo the
key once written. Schemas and manifests are read through here instead, and a repeated key is an error that
names it (and, in YAML, its line).
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

import yaml


class DuplicateKey(ValueError):
    """A mapping in a JSON or YAML document has the same key twice."""


def loads_json(text: str) -> Any:
    """``json.loads``, refusing a repeated key in any object."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def loads_yaml(text: str) -> Any:
    """``yaml.safe_load``, refusing a repeated key in any mapping."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise DuplicateKey(f"the key {key!r} appears twice in one mapping (the second on line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
