"""The base of every model a flow takes as a parameter (pure): a key it does not declare is refused, by name.

Pydantic drops undeclared keys without a word, so ``destination={"kind": "local", "locaton": "/data"}``
exported to the default directory instead. Flow parameters are typed by people (in the Prefect UI's JSON
view, a ``prefect.yaml``, ``prefect deployment run --param``), so a misspelt key must be an error naming it,
raised when the parameters are validated: before the run writes anything.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ParameterModel(BaseModel):
    """A flow parameter's model: unknown keys are an error ("locaton: Extra inputs are not permitted")."""

    model_config = ConfigDict(extra="forbid")
