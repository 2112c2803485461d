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
from pydantic import TypeAdapter

import prefect_encord.flows as flows_package
from prefect_encord.flows.parameters import CloudDestination, GroupingStep, LocalDestination
from prefect_encord.planning.grouping import GroupsFile, KeyPattern
from prefect_encord.planning.layouts import CarouselLayout, LayoutFile, RolesLayout, parse_layout


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
    assert layouts == {"RolesLayout", "LayoutFile"}  # a recursive tree would hang the UI's form
    assert "DataGroupLayout" not in json.dumps(schema) and "LayoutGrid" not in schema["definitions"]
    assert grouping["layout"]["default"] == {"style": "grid", "roles": []}
    assert schema["definitions"]["RolesLayout"]["properties"]["style"]["enum"] == ["grid", "carousel"]


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_no_form_shows_a_constant(name: str) -> None:
    """The Prefect UI draws a const as a greyed "Kind is a const" box and keeps it when a person switches tabs:
    no choice carries its kind into a form; the fields each choice requires tell them apart."""
    schema = json.dumps(parameter_schema(FLOWS[name]).model_dump())
    assert '"const"' not in schema and '"kind"' not in schema


def test_a_forms_choice_is_told_by_its_fields() -> None:
    from prefect_encord.flows.parameters import CloudSource, LocalSource

    source = TypeAdapter(LocalSource | CloudSource)
    assert isinstance(source.validate_python({"directory": "/data"}), LocalSource)
    with pytest.raises(ValueError, match="a bucket source needs its saved cloud integration block"):
        source.validate_python({"include": ["*.mp4"]})  # ingest-hourly before a block is picked
    destination = TypeAdapter(LocalDestination | CloudDestination)
    assert isinstance(destination.validate_python({"prefix": "labels"}), LocalDestination)
    with pytest.raises(ValueError, match="locaton"):
        destination.validate_python({"locaton": "/data"})
    step = GroupingStep.model_validate({"rule": {"path": "groups.csv"}, "layout": {"style": "carousel"}})
    assert isinstance(step.rule, GroupsFile) and step.layout == RolesLayout(style="carousel")
    assert isinstance(
        GroupingStep.model_validate({"rule": {"pattern": "(?P<key>s)"}, "layout": {"path": "l.json"}}).layout,
        LayoutFile,
    )
    assert "kind" not in LocalSource(directory="/data").model_dump()  # a run's parameters refill a form as they are


def test_grouping_rules_and_layouts_still_accept_their_dict_forms() -> None:
    step = GroupingStep.model_validate(
        {"rule": {"kind": "groups_file", "path": "groups.csv"}, "layout": {"kind": "carousel"}}
    )
    assert isinstance(step.rule, GroupsFile) and step.layout == RolesLayout(style="carousel")
    pattern = GroupingStep.model_validate({"rule": {"pattern": r"(?P<key>s\d+)"}})
    assert isinstance(pattern.rule, KeyPattern) and pattern.layout == RolesLayout(style="grid")
    given = GroupingStep(rule=KeyPattern(pattern=r"(?P<key>s\d+)"), layout=CarouselLayout(roles=["a", "b"]))
    assert given.layout == RolesLayout(style="carousel", roles=["a", "b"])
    assert parse_layout(given.layout) == CarouselLayout(roles=["a", "b"])
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


def test_the_servers_check_takes_a_kind_given_the_old_way_and_refuses_a_misspelt_key() -> None:
    """Prefect's server checks a deployment's parameters against the schema (prefect.yaml, --param, triggers):
    a ``kind`` written for forms that showed it still passes, a wrong kind or a misspelt key does not."""
    from prefect.utilities.schema_tools.validation import ValidationError as SchemaError
    from prefect.utilities.schema_tools.validation import validate

    schema = parameter_schema(FLOWS["encord-export-labels"]).model_dump_for_openapi()

    def check(destination: dict[str, Any]) -> None:
        validate({"destination": destination}, schema, raise_on_error=True, preprocess=True, ignore_required=True)

    check({"kind": "local", "directory": "/data"})
    check({"directory": "/data"})
    for wrong in ({"kind": "cloud", "directory": "/data"}, {"locaton": "/data"}):
        with pytest.raises(SchemaError):
            check(wrong)
