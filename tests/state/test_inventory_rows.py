"""The inventory confirms unchanged units in bulk: only a unit held with the very fingerprint listed now."""

from __future__ import annotations

from pathlib import Path

from prefect_encord.state.inventory import Inventory

A, B, C, D = (f"s3://b/cams/{name}.png" for name in "abcd")


def test_only_units_held_with_the_listed_fingerprint_are_confirmed_and_seen(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.sqlite3") as inventory:
        inventory.record([(url, url[7:], f"f-{url[-5]}", f"item-{url[-5]}") for url in (A, B, C, D)], "first")
        inventory.unsettle([C])  # its fingerprint forgotten: compared as changed next time
        confirmed = inventory.unchanged({A: "f-a", B: "f-overwritten", C: "f-c", "s3://b/new.png": "f-n"}, "second")
        assert confirmed == {A: "item-a"}
        assert sorted(k.url for k in inventory.unseen("second")) == [B, C, D]  # left to the planner, or vanished
        assert inventory.unchanged({}, "second") == {}
