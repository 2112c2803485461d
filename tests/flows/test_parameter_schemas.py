"""Every flow's parameters render as forms in the Prefect UI: checked on the schema Prefect computes.

The Prefect UI shows a discriminated union (``oneOf`` + ``discriminator``) as a raw JSON editor, and strips
``<…>`` from descriptions; these tests read the same schema the UI gets (``parameter_schema``), for every
flow the package defines, so a new flow or parameter cannot bring either back.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from prefect.flows import Flow
from prefect.settings import PREFECT_HOME, temporary_settings
from prefect.utilities.callables import parameter_schema

import prefect_encord.flows as flows_package
from prefect_encord.flows.parameters import GroupingStep, LocalDestination
from prefect_encord.planning.grouping import GroupsFile, KeyPattern
from prefect_encord.planning.layouts import CarouselLayout, GridLayout, LayoutFile


def _flows() -> list[Flow[Any, Any]]:
    found = []
    for module_info in pkgutil.iter_modules(flows_package.__path__):
        module = importlib.import_module(f"{flows_package.__name__}.{module_info.name}")
        found += [obj for obj in vars(module).values() if isinstance(obj, Flow) and obj.__module__ == module.__name__]
    return found


FLOWS = {flow.name: flow for flow in _flows()}


def _descriptions(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["description"]] if isinstance(node.get("description"), str) else []
        return own + [d for value in node.values() for d in _descriptions(value)]
    if isinstance(node, list):
        return [d for value in node for d in _descriptions(value)]
    return []


def test_every_flow_is_found() -> None:
    assert {"encord-ingest", "encord-export-labels", "encord-sync-metadata", "encord-rollback"} <= set(FLOWS)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_no_parameter_renders_as_a_json_box(name: str) -> None:
    schema = json.dumps(parameter_schema(FLOWS[name]).model_dump())
    assert '"oneOf"' not in schema and '"discriminator"' not in schema


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_no_description_loses_text_in_angle_brackets(name: str) -> None:
    schema = parameter_schema(FLOWS[name]).model_dump()
    stripped = [d for d in _descriptions(schema) if re.search(r"<[^>]*>", d)]
    assert stripped == []


def test_the_grouping_step_offers_typed_rules_and_layouts_with_a_visible_default() -> None:
    schema = parameter_schema(FLOWS["encord-ingest"]).model_dump()
    grouping = schema["definitions"]["GroupingStep"]["properties"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in grouping["rule"]["anyOf"]} == {"KeyPattern", "GroupsFile"}
    assert schema["definitions"]["GroupsFile"]["properties"]["path"]["type"] == "string"  # a path, not a JSON box
    layouts = {ref["$ref"].rsplit("/", 1)[1] for ref in grouping["layout"]["anyOf"]}
    assert layouts == {"GridLayout", "CarouselLayout", "LayoutFile"}  # a recursive tree would hang the UI's form
    assert "DataGroupLayout" not in json.dumps(schema) and "LayoutGrid" not in schema["definitions"]
    assert grouping["layout"]["default"] == {"kind": "grid", "roles": []}


def test_grouping_rules_and_layouts_still_accept_their_dict_forms() -> None:
    step = GroupingStep.model_validate(
        {"rule": {"kind": "groups_file", "path": "groups.csv"}, "layout": {"kind": "carousel"}}
    )
    assert isinstance(step.rule, GroupsFile) and isinstance(step.layout, CarouselLayout)
    pattern = GroupingStep.model_validate({"rule": {"pattern": r"(?P<key>s\d+)"}})
    assert isinstance(pattern.rule, KeyPattern) and isinstance(pattern.layout, GridLayout)
    custom = GroupingStep.model_validate(
        {"rule": {"pattern": r"(?P<key>s\d+)"}, "layout": {"kind": "layout_file", "path": "cameras.json"}}
    )
    assert isinstance(custom.layout, LayoutFile)
    with pytest.raises(ValueError, match="needs a named group"):
        GroupingStep.model_validate({"rule": {"pattern": "no-groups"}})


def test_buckets_are_block_pickers_not_text() -> None:
    """A cloud source or destination is a choice of the cloud block types, each rendered as a block picker."""
    for flow_name, model in (("encord-ingest", "CloudSource"), ("encord-export-labels", "CloudDestination")):
        schema = parameter_schema(FLOWS[flow_name]).model_dump()
        choices = [
            ref["$ref"].rsplit("/", 1)[1] for ref in schema["definitions"][model]["properties"]["block"]["anyOf"]
        ]
        slugs = {schema["definitions"][choice]["block_type_slug"] for choice in choices}
        assert slugs == {"encord-s3-integration", "encord-gcs-integration", "encord-azure-integration"}


def test_every_encord_flow_takes_credentials_as_a_block() -> None:
    for name, flow in FLOWS.items():
        schema = parameter_schema(flow).model_dump()
        assert schema["properties"]["credentials"]["$ref"] == "#/definitions/EncordCredentials", name


def test_local_exports_land_under_prefect_home_unless_given_an_absolute_directory(tmp_path: Path) -> None:
    with temporary_settings(updates={PREFECT_HOME: str(tmp_path / "home")}):
        assert LocalDestination().root() == tmp_path / "home" / "encord" / "exports"
        assert LocalDestination(directory="nightly").root() == tmp_path / "home" / "encord" / "exports" / "nightly"
        assert LocalDestination(directory=str(tmp_path / "out")).root() == tmp_path / "out"


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_every_parameter_model_of_ours_refuses_keys_it_does_not_declare(name: str) -> None:
    """``additionalProperties: false`` in the schema is pydantic's ``extra="forbid"``: a misspelt key is an error."""
    definitions = parameter_schema(FLOWS[name]).model_dump().get("definitions") or {}
    ours = {
        title: spec
        for title, spec in definitions.items()
        if _model_of_ours(title) is not None and "block_type_slug" not in spec
    }  # blocks are forms of their own
    assert name not in ("encord-ingest", "encord-export-labels") or ours
    assert all(spec.get("additionalProperties") is False for spec in ours.values()), ours


def _model_of_ours(title: str) -> type | None:
    """The pydantic model named ``title`` in prefect_encord's flows or planning modules, if any."""
    import prefect_encord.planning as planning

    modules = [f"{package.__name__}.{info.name}" for package in (planning, flows_package)
               for info in pkgutil.iter_modules(package.__path__)]  # fmt: skip
    for module in modules:
        found = getattr(importlib.import_module(module), title, None)
        if isinstance(found, type) and found.__module__.startswith("prefect_encord"):
            return found
    return None


def test_a_misspelt_key_is_refused_naming_it_before_the_run_starts() -> None:
    from prefect.exceptions import ParameterTypeError

    from prefect_encord.blocks.credentials import EncordCredentials

    credentials = EncordCredentials(domain="http://127.0.0.1:9", ssh_private_key="unused")
    with pytest.raises(ParameterTypeError, match="destination.LocalDestination.locaton: Extra inputs"):
        FLOWS["encord-export-labels"].validate_parameters(
            {"project_hash": "p", "destination": {"kind": "local", "locaton": "/data"}, "credentials": credentials}
        )
    with pytest.raises(ParameterTypeError, match="source.LocalSource.exlcude: Extra inputs"):
        FLOWS["encord-ingest"].validate_parameters(
            {"source": {"kind": "local", "directory": ".", "exlcude": ["*.mp4"]}, "credentials": credentials}
        )
