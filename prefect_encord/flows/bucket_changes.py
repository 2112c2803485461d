"""What an ingest does with the items of bucket objects that were overwritten or deleted since they were made.

The user chooses, per cloud source (:class:`~prefect_encord.flows.parameters.CloudSource`):

* ``on_changed="report"`` keeps the item, which points at bytes that changed; ``"replace"`` deletes it and
  registers the object again, so the item follows the new bytes, as Encord's cloud-synced folders update an item
  whose content changed. An item with labels is kept and reported as failed (its labels would go with it), unless
  ``replace_labelled_items``, as a rollback refuses unless forced; it stays changed for the next run to act on.
* ``on_vanished="report"`` keeps the item; ``"archive"`` moves it into the archive folder (``archive_folder``, by
  default ``archive`` inside the ingest's folder), labels and dataset links kept, and a later run that finds the
  object again moves it back (:func:`~prefect_encord.tasks.moves.restore_archived`); ``"delete"`` deletes it with
  its labels. Archive and delete do nothing, and fail the step, when more than ``max_deletions`` vanished at once
  (a wrong prefix or an emptied bucket must not empty the folder).

Every affected key is named: the run's table, its receipt and its item map (a ``note`` line each).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.reporting import FILES, Outcome, RunReport
from prefect_encord.flows.parameters import CloudSource
from prefect_encord.state.inventory import archive_units, forget_units, unsettle_units
from prefect_encord.state.item_map import ItemMapWriter
from prefect_encord.state.run_ledger import RunLedger
from prefect_encord.tasks.deletion import delete_items
from prefect_encord.tasks.folders import ensure_folder
from prefect_encord.tasks.label_rows import find_labelled_items
from prefect_encord.tasks.moves import move_items
from prefect_encord.tasks.registration import register_bucket


def too_many_vanished(source: CloudSource, vanished: Sequence[tuple[str, str]]) -> bool:
    """Whether ``on_vanished`` must not act: more objects vanished at once than ``max_deletions`` allows (a wrong
    prefix or an emptied bucket must not empty the folder). Reporting them is always allowed."""
    return source.on_vanished != "report" and len(vanished) > source.max_deletions


def settle_changed(
    credentials: EncordCredentials,
    source: CloudSource,
    folder_uuid: str,
    changed: Sequence[tuple[str, str]],
    ledger: RunLedger,
    report: RunReport,
) -> None:
    """Report the items of overwritten objects, or replace them (see the module's docstring)."""
    if source.on_changed == "report" or not changed:
        report.record(Outcome(FILES, url, "changed", f"overwritten in the bucket since it became item {item}, "
                              "which is kept as it is (on_changed='replace' replaces it)")
                      for url, item in changed)  # fmt: skip
        return
    urls = {item: url for url, item in changed}
    labelled = set() if source.replace_labelled_items else find_labelled_items(credentials, list(urls)).items
    report.record(Outcome(FILES, urls[item], "failed", f"overwritten in the bucket, but its item {item} has labels, "
                          "which replacing it would delete: kept (replace_labelled_items=True replaces it)")
                  for item in sorted(labelled))  # fmt: skip
    unsettle_units(folder_uuid, source.block, [urls[item] for item in labelled])  # changed again next run
    doomed = [item for item in urls if item not in labelled]
    if not doomed:
        return
    ledger.before(f"replace {len(doomed)} items of objects overwritten in {source.block.root_url}")
    deleted = delete_items(credentials, doomed)  # found by UUID: listing a large folder would cost more
    report.record(Outcome(FILES, urls[item], "failed", f"overwritten in the bucket; its item {item} could not be "
                          f"deleted to replace it: {why}") for item, why in deleted.failed.items())  # fmt: skip
    unsettle_units(folder_uuid, source.block, [urls[item] for item in deleted.failed])
    gone = [item for item in doomed if item not in deleted.failed]
    forget_units(folder_uuid, source.block, [urls[item] for item in gone])
    keys = [key for key in (source.block.key_of(urls[item]) for item in gone) if key is not None]
    again = register_bucket.submit(
        credentials, source.block, folder_uuid, item_map=ledger.item_map_path, keys=keys,
        sidecar_suffix=source.sidecar_suffix, sidecar_mode=source.sidecar_mode,
        sidecar_unknown_keys=source.sidecar_unknown_keys,
    ).result()  # fmt: skip
    ledger.after(jobs=[job.job_id for job in again.jobs])
    created = again.created
    replaced = {urls[item]: created[urls[item]] for item in gone if urls[item] in created}
    ledger.after(replaced=replaced)
    with ItemMapWriter(ledger.item_map_path) as writer:
        writer.note(replaced, "replaced")
    report.record(Outcome(FILES, url, "replaced", f"overwritten in the bucket: item {item} deleted, item "
                          f"{replaced[url]} registered from the new bytes") for item, url in
                  ((item, urls[item]) for item in gone) if url in replaced)  # fmt: skip
    report.record(Outcome(FILES, urls[item], "failed", f"overwritten in the bucket: item {item} deleted, but the new "
                          "bytes were not registered (the next run registers them)")
                  for item in gone if urls[item] not in replaced)  # fmt: skip


def settle_vanished(
    credentials: EncordCredentials,
    source: CloudSource,
    folder: tuple[str, str],
    vanished: Sequence[tuple[str, str]],
    ledger: RunLedger,
    report: RunReport,
) -> None:
    """Report the items of objects gone from the bucket; archive or delete them if asked, within ``max_deletions``.
    ``folder`` is the ingest's folder as (UUID, path)."""
    folder_uuid, folder_path = folder
    if source.on_vanished == "report" or not vanished:
        report.record(Outcome(FILES, url, "vanished", f"deleted from the bucket; its item {item} is kept "
                              "(on_vanished='archive' or 'delete' acts on it)") for url, item in vanished)  # fmt: skip
        return
    if too_many_vanished(source, vanished):
        report.record(Outcome(FILES, url, "failed", f"deleted from the bucket, but {len(vanished)} vanished, more "
                              f"than max_deletions={source.max_deletions}: item {item} not {source.on_vanished}d")
                      for url, item in vanished)  # fmt: skip
        return
    if source.on_vanished == "archive":
        _archive(credentials, source, folder_uuid, source.archive_folder or f"{folder_path}/archive", vanished,
                 ledger, report)  # fmt: skip
        return
    ledger.before(f"delete {len(vanished)} items of objects deleted from {source.block.root_url}")
    result = delete_items(credentials, [item for _, item in vanished])  # by UUID, not by listing the folder
    gone = set(result.deleted) | set(result.already_deleted)
    forget_units(folder_uuid, source.block, [url for url, item in vanished if item in gone])
    report.record(Outcome(FILES, url, "deleted" if item in gone else "failed",
                          f"item {item}: its object was deleted from the bucket" if item in gone
                          else f"item {item} could not be deleted: {result.failed.get(item, '?')}")
                  for url, item in vanished)  # fmt: skip


def _archive(
    credentials: EncordCredentials,
    source: CloudSource,
    folder_uuid: str,
    archive_path: str,
    vanished: Sequence[tuple[str, str]],
    ledger: RunLedger,
    report: RunReport,
) -> None:
    """Move the items into the archive folder (created if missing) and mark their units archived."""
    archive = ensure_folder(credentials, archive_path)
    ledger.after(folders=archive.created)
    ledger.before(f"archive {len(vanished)} items of objects deleted from {source.block.root_url} into {archive_path}")
    moved = move_items(credentials.get_client(), [item for _, item in vanished], archive.uuid)
    in_place = set(moved.in_place)
    archive_units(folder_uuid, source.block, [url for url, item in vanished if item in in_place], archive.uuid)
    forget_units(folder_uuid, source.block, [url for url, item in vanished if item in set(moved.missing)])
    archived = {url: item for url, item in vanished if item in in_place}
    ledger.after(archived=archived)
    with ItemMapWriter(ledger.item_map_path) as writer:
        writer.note(archived, "archived")
    for url, item in vanished:
        if item in in_place:
            report.record([Outcome(FILES, url, "archived", f"deleted from the bucket: item {item} moved to "
                                   f"{archive_path}, and back if the object returns")])  # fmt: skip
        elif item in moved.failed:
            report.record([Outcome(FILES, url, "failed", f"item {item} could not be archived: {moved.failed[item]}")])
        else:
            report.record([Outcome(FILES, url, "deleted", f"item {item} was already deleted from Encord")])
