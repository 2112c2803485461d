"""The base of every model a flow takes as a parameter (pure): a key it does not declare is refused, by name.

Pydantic drops undeclared keys without a word, so ``destination={"kind": "local", "locaton": "/data"}``
exported to the default directory instead. Flow parameters are typed by people (in the Prefect UI's JSON
view, a ``prefect.yaml``, ``prefect deployment run --param``), so a misspelt key must be an error naming it,
raised when the parameters are validated: before the run writes anything.

A choice between models (a source, a rule, a layout, a destination) is a plain union, told apart by the fields
each member requires. Each member keeps a ``kind`` (``LocalSource().kind == "local"``) that callers may give,
but it is left out of the form and of dumps (``SkipJsonSchema``, ``exclude``): the Prefect UI draws a
constant as a greyed "Kind is a const" box, and keeps the previous choice's constant when a person switches
tabs, so the form sent one choice's kind with another's fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _kind_still_allowed(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A ``kind`` left out of the form stays allowed where the schema is enforced: Prefect's server checks a
    deployment's parameters against it, and prefect.yaml files and ``--param`` values written for forms that
    showed the kind still carry it. The UI draws ``properties`` only, so ``patternProperties`` stays unseen."""
    kind = model.model_fields.get("kind")
    if kind is not None and "kind" not in schema.get("properties", {}):
        schema["patternProperties"] = {"^kind$": {"enum": [kind.default]}}


class ParameterModel(BaseModel):
    """A flow parameter's model: unknown keys are an error ("locaton: Extra inputs are not permitted")."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_kind_still_allowed)
