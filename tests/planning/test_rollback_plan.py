"""What a rollback removes and keeps, from receipts alone (pure)."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect_encord.planning.rollback_plan import plan_rollback
from prefect_encord.state.run_ledger import Receipt

NOW = datetime(2026, 12, 7, tzinfo=timezone.utc)


def _receipt(run_id: str, **fields: object) -> Receipt:
    return Receipt.model_validate({"run_id": run_id, "started_at": NOW, **fields})


def test_groups_before_items_folders_innermost_first_and_attachments() -> None:
    receipt = _receipt("r", groups_created=["g1"], folders_created=["outer", "inner"],
                       projects_attached={"p": ["d"]})  # fmt: skip
    plan = plan_rollback(receipt, ["i2", "i1"], [])
    assert plan.items == ["g1", "i1", "i2"]
    assert plan.folders == ["inner", "outer"]
    assert plan.detach == {"p": ["d"]}


def test_a_schema_key_another_live_run_declares_is_kept_and_datasets_and_projects_are_named() -> None:
    receipt = _receipt("r", schema_keys_added=["a", "b", "c"], datasets_created=["d"], projects_created=["p"])
    others = [
        _receipt("later", schema_keys_declared=["b"]),
        _receipt("undone", schema_keys_declared=["c"], rolled_back_at=NOW),  # rolled back: uses nothing
        receipt,  # the run itself, as the ledger lists it
    ]
    plan = plan_rollback(receipt, [], others)
    assert plan.schema_keys == ["a", "c"]
    assert plan.kept["schema key b"] == "run later declares it too"
    assert plan.kept["dataset d"].startswith("Encord's SDK and API cannot delete a dataset")
    assert plan.kept["project p"].startswith("Encord's SDK and API cannot delete a project")


def test_an_attachment_is_kept_when_another_live_run_linked_into_its_dataset() -> None:
    receipt = _receipt("r", projects_attached={"p": ["d", "e"]})
    later = _receipt("later", datasets_linked={"d": ["i1"]})
    plan = plan_rollback(receipt, [], [receipt, later])
    assert plan.detach == {"p": ["e"]}
    assert plan.kept == {"dataset d in project p": "run later linked items into it too"}
