"""The sandbox's state: one SQLite database holding users, keys, folders, items, groups and jobs.

Every rule about *what may be stored* lives here or in the pure modules it calls (``groups``,
``schema``); the wire layer only translates. SQLite is shared by the request threads and the job
runner, so one connection is used under a lock, and each mutation is one transaction: a request
that fails validation writes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from encord_sandbox.errors import Forbidden, InvalidArgument, NotFound, parse_uuid
from encord_sandbox.groups import GroupPlan

#: The state of one sandbox, in its data directory: a data directory without it holds no sandbox yet.
STORE_FILE_NAME = "sandbox.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (key_hex TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id));
CREATE TABLE IF NOT EXISTS integrations (
    uuid TEXT PRIMARY KEY, title TEXT NOT NULL, owner TEXT NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS folders (
    uuid TEXT PRIMARY KEY, parent TEXT, name TEXT NOT NULL, description TEXT NOT NULL,
    client_metadata TEXT, owner TEXT NOT NULL, created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS folders_parent ON folders(parent, name);
CREATE TABLE IF NOT EXISTS items (
    uuid TEXT PRIMARY KEY, folder TEXT NOT NULL, item_type TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', client_metadata TEXT NOT NULL DEFAULT '{}', owner TEXT NOT NULL,
    created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL, is_placeholder INTEGER NOT NULL DEFAULT 0,
    frame_of TEXT, storage_location TEXT NOT NULL, integration_hash TEXT, url TEXT, blob_key TEXT,
    file_size INTEGER, mime_type TEXT, duration REAL, fps REAL, height INTEGER, width INTEGER,
    dicom_instance_uid TEXT, dicom_study_uid TEXT, dicom_series_uid TEXT, frame_count INTEGER,
    audio_sample_rate INTEGER, audio_bit_depth INTEGER, audio_codec TEXT, audio_num_channels INTEGER,
    num_pages INTEGER, layout TEXT);
CREATE INDEX IF NOT EXISTS items_folder ON items(folder, is_placeholder, frame_of, name);
CREATE INDEX IF NOT EXISTS items_url ON items(folder, url);
CREATE TABLE IF NOT EXISTS item_children (
    parent TEXT NOT NULL, position INTEGER NOT NULL, key TEXT NOT NULL, child TEXT NOT NULL,
    PRIMARY KEY (parent, position));
CREATE INDEX IF NOT EXISTS item_children_child ON item_children(child);
CREATE TABLE IF NOT EXISTS jobs (
    uuid TEXT PRIMARY KEY, folder TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
    ignore_errors INTEGER NOT NULL, file_name TEXT, integration_hash TEXT, options TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_units (
    job TEXT NOT NULL, idx INTEGER NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
    item_uuid TEXT, name TEXT, error TEXT, subtask_uuid TEXT NOT NULL, PRIMARY KEY (job, idx));
CREATE INDEX IF NOT EXISTS job_units_status ON job_units(status, job);
CREATE TABLE IF NOT EXISTS metadata_schemas (
    kind TEXT PRIMARY KEY, uuid TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
"""

ITEM_FACT_COLUMNS = [
    "file_size",
    "mime_type",
    "duration",
    "fps",
    "height",
    "width",
    "dicom_instance_uid",
    "dicom_study_uid",
    "dicom_series_uid",
    "frame_count",
    "audio_sample_rate",
    "audio_bit_depth",
    "audio_codec",
    "audio_num_channels",
    "num_pages",
]


def now_iso() -> str:
    """Timestamps are stored as ISO 8601 UTC strings, which sort correctly as text."""
    return datetime.now(timezone.utc).isoformat()


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class NewItem:
    """An item about to be stored; facts come from probing or the customer's provided metadata."""

    folder: str
    item_type: str
    name: str
    owner: str
    storage_location: str
    uuid: str = field(default_factory=new_uuid)
    client_metadata: dict[str, Any] = field(default_factory=dict)
    integration_hash: str | None = None
    url: str | None = None
    blob_key: str | None = None
    frame_of: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, Any] | None = None


@dataclass(frozen=True)
class Deletion:
    """What one item deletion removed: items (with frames), dataset links, label rows and unused blobs."""

    removed_items: list[str]
    kept_frames: list[str]
    data_units: list[str]
    label_rows: list[str]
    blob_keys: list[str]


class Store:
    """All sandbox state, behind one lock. Methods raise the sandbox's HTTP-mapped errors."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:  # SQLite's own message ("unable to open database file") names no file
            raise OSError(f"the sandbox cannot open its database {path}: {exc}") from exc

    def ensure_schema(self, ddl: str) -> None:
        """Create the tables of another state module (datasets, projects, labels) if missing."""
        with self._lock:
            self._db.executescript(ddl)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # --- users and keys -------------------------------------------------------------------------

    def ensure_user(self, email: str) -> str:
        row = self.query_one("SELECT id FROM users WHERE email = ?", (email,))
        if row:
            return str(row["id"])
        user_id = new_uuid()
        with self.transaction() as db:
            db.execute("INSERT INTO users VALUES (?, ?, ?)", (user_id, email, now_iso()))
        return user_id

    def add_key(self, user_id: str, key_hex: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO keys VALUES (?, ?)", (key_hex.lower(), user_id))

    def user_for_key(self, key_hex: str) -> str | None:
        row = self.query_one("SELECT user_id FROM keys WHERE key_hex = ?", (key_hex,))
        return str(row["user_id"]) if row else None

    def user_email(self, user_id: str) -> str:
        row = self.query_one("SELECT email FROM users WHERE id = ?", (user_id,))
        return str(row["email"]) if row else "unknown@sandbox.local"

    # --- integrations ---------------------------------------------------------------------------

    def add_integration(self, owner: str, title: str, config: dict[str, Any], integration_uuid: str) -> str:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO integrations VALUES (?, ?, ?, ?)",
                (integration_uuid, title, owner, json.dumps(config)),
            )
        return integration_uuid

    def integrations(self, owner: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM integrations WHERE owner = ? ORDER BY title", (owner,))

    def integration(self, owner: str, integration_uuid: str) -> sqlite3.Row:
        row = self.query_one("SELECT * FROM integrations WHERE uuid = ?", (integration_uuid,))
        if row is None:
            raise NotFound(f"cloud integration {integration_uuid} does not exist")
        if row["owner"] != owner:
            raise Forbidden(f"you have no access to cloud integration {integration_uuid}")
        return row

    # --- folders --------------------------------------------------------------------------------

    def folder(self, user: str, folder_uuid: str) -> sqlite3.Row:
        """A folder the user owns. Another user's folder is 403, a missing one 404 (as the SDK says)."""
        row = self.query_one("SELECT * FROM folders WHERE uuid = ?", (parse_uuid(folder_uuid, "folder"),))
        if row is None:
            raise NotFound(f"folder {folder_uuid} does not exist")
        if row["owner"] != user:
            raise Forbidden(f"you have no access to folder {folder_uuid}")
        return row

    def create_folder(
        self, user: str, name: str, description: str, client_metadata: str | None, parent: str | None
    ) -> str:
        if not name or not name.strip():
            raise InvalidArgument(f"folder name {name!r} must not be empty")
        if client_metadata is not None:
            if not isinstance(client_metadata, str):
                raise InvalidArgument(f"folder clientMetadata must be a JSON string, got {client_metadata!r}")
            _json_object(client_metadata, "folder clientMetadata")
        if parent is not None:
            self.folder(user, parent)
        folder_uuid, stamp = new_uuid(), now_iso()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO folders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (folder_uuid, parent, name, description, client_metadata, user, stamp, stamp),
            )
        return folder_uuid

    def list_folders(
        self, user: str, parent: str | None, recursive: bool, search: str | None, order: str, desc: bool
    ) -> list[sqlite3.Row]:
        if parent is not None:
            self.folder(user, parent)
        rows = self.query("SELECT * FROM folders WHERE owner = ?", (user,))
        if parent is None and not recursive:
            rows = [r for r in rows if r["parent"] is None]
        elif parent is not None:
            allowed = self._descendants(parent, rows) if recursive else {parent}
            rows = [r for r in rows if r["parent"] in allowed]
        if search:
            rows = [r for r in rows if search.lower() in r["name"].lower()]
        key = "created_at" if order == "createdAt" else "name"
        return sorted(rows, key=lambda r: (r[key], r["uuid"]), reverse=desc)

    @staticmethod
    def _descendants(root: str, rows: list[sqlite3.Row]) -> set[str]:
        children: dict[str, list[str]] = {}
        for r in rows:
            children.setdefault(r["parent"], []).append(r["uuid"])
        found, frontier = {root}, [root]
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        return found

    def path_to_root(self, folder_uuid: str) -> list[sqlite3.Row]:
        path: list[sqlite3.Row] = []
        current: str | None = folder_uuid
        while current is not None:
            row = self.query_one("SELECT * FROM folders WHERE uuid = ?", (current,))
            if row is None:
                break
            path.append(row)
            current = row["parent"]
        return path

    def patch_folders(self, user: str, patches: dict[str, dict[str, Any]]) -> list[str]:
        """Apply several folder patches atomically; all are validated before any is written."""
        checked = {}
        for raw_uuid, patch in patches.items():
            folder_uuid = self.folder(user, raw_uuid)["uuid"]
            if patch.get("name") is not None and (not isinstance(patch["name"], str) or not patch["name"].strip()):
                raise InvalidArgument(f"folder name {patch['name']!r} is not a non-empty string")
            metadata = patch.get("client_metadata")
            if metadata is not None and not isinstance(metadata, dict):
                raise InvalidArgument(f"folder clientMetadata must be an object, got {metadata!r}")
            checked[folder_uuid] = patch
        with self.transaction() as db:
            for folder_uuid, patch in checked.items():
                for column in ("name", "description"):
                    if patch.get(column) is not None:
                        db.execute(f"UPDATE folders SET {column} = ? WHERE uuid = ?", (patch[column], folder_uuid))
                if patch.get("client_metadata") is not None:
                    db.execute(
                        "UPDATE folders SET client_metadata = ? WHERE uuid = ?",
                        (json.dumps(patch["client_metadata"]), folder_uuid),
                    )
                db.execute("UPDATE folders SET last_edited_at = ? WHERE uuid = ?", (now_iso(), folder_uuid))
        return list(checked)

    # --- items ----------------------------------------------------------------------------------

    def item(self, user: str, item_uuid: str) -> sqlite3.Row:
        row = self.query_one("SELECT * FROM items WHERE uuid = ?", (parse_uuid(item_uuid, "item"),))
        if row is None or row["is_placeholder"]:
            raise NotFound(f"item {item_uuid} does not exist")
        if row["owner"] != user:
            raise Forbidden(f"you have no access to item {item_uuid}")
        return row

    def item_in_folder(self, user: str, folder_uuid: str, item_uuid: str) -> sqlite3.Row:
        folder = self.folder(user, folder_uuid)
        row = self.item(user, item_uuid)
        if row["folder"] != folder["uuid"]:
            raise NotFound(f"item {item_uuid} is not in folder {folder_uuid}")
        return row

    def items(self, user: str, item_uuids: Sequence[str]) -> list[sqlite3.Row]:
        return [self.item(user, u) for u in item_uuids]

    def list_items(
        self,
        user: str,
        folder_uuid: str,
        recursive: bool,
        search: str | None,
        item_types: Sequence[str],
        order: str,
        desc: bool,
        after: tuple[str, str] | None,
        limit: int,
    ) -> list[sqlite3.Row]:
        """One page of visible items (frames of image groups/DICOM series stay hidden, as in Encord)."""
        self.folder(user, folder_uuid)
        folders = [folder_uuid]
        if recursive:
            all_rows = self.query("SELECT uuid, parent FROM folders WHERE owner = ?", (user,))
            folders = sorted(self._descendants(folder_uuid, all_rows))
        column = "created_at" if order == "createdAt" else "name"
        sql = [
            f"SELECT * FROM items WHERE folder IN ({','.join('?' * len(folders))})",
            "AND is_placeholder = 0 AND frame_of IS NULL",
        ]
        params: list[Any] = list(folders)
        if item_types:
            sql.append(f"AND item_type IN ({','.join('?' * len(item_types))})")
            params.extend(item_types)
        if search:
            sql.append("AND instr(lower(name), lower(?)) > 0")
            params.append(search)
        comparison = "<" if desc else ">"
        if after is not None:
            sql.append(f"AND ({column}, uuid) {comparison} (?, ?)")
            params.extend(after)
        direction = "DESC" if desc else "ASC"
        sql.append(f"ORDER BY {column} {direction}, uuid {direction} LIMIT ?")
        params.append(limit)
        return self.query(" ".join(sql), params)

    def create_placeholders(self, user: str, folder_uuid: str, item_type: str, count: int) -> list[str]:
        """Reserve item UUIDs for a local upload; they stay invisible until a job registers them."""
        folder = self.folder(user, folder_uuid)
        uuids = [new_uuid() for _ in range(count)]
        stamp = now_iso()
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO items (uuid, folder, item_type, name, owner, created_at, last_edited_at, "
                "is_placeholder, storage_location, blob_key) VALUES (?, ?, ?, '', ?, ?, ?, 1, 'encord', ?)",
                [(u, folder["uuid"], item_type, user, stamp, stamp, u) for u in uuids],
            )
        return uuids

    def placeholder(self, folder_uuid: str, item_uuid: str) -> sqlite3.Row:
        row = self.query_one(
            "SELECT * FROM items WHERE uuid = ? AND folder = ? AND is_placeholder = 1",
            (parse_uuid(item_uuid, "placeholderItemUuid"), folder_uuid),
        )
        if row is None:
            raise NotFound(f"placeholder item {item_uuid} was not reserved in folder {folder_uuid}")
        return row

    def insert_items(self, db: sqlite3.Connection, items: Sequence[NewItem]) -> None:
        """Store items (or turn reserved placeholders into them) inside the caller's transaction."""
        stamp = now_iso()
        columns = [
            "uuid",
            "folder",
            "item_type",
            "name",
            "client_metadata",
            "owner",
            "created_at",
            "last_edited_at",
            "is_placeholder",
            "frame_of",
            "storage_location",
            "integration_hash",
            "url",
            "blob_key",
            "layout",
        ] + ITEM_FACT_COLUMNS
        sql = f"INSERT OR REPLACE INTO items ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
        db.executemany(
            sql,
            [
                (
                    i.uuid, i.folder, i.item_type, i.name, json.dumps(i.client_metadata), i.owner, stamp, stamp,
                    0, i.frame_of, i.storage_location, i.integration_hash, i.url, i.blob_key,
                    json.dumps(i.layout) if i.layout is not None else None,
                    *(i.facts.get(c) for c in ITEM_FACT_COLUMNS),
                )
                for i in items
            ],
        )  # fmt: skip

    def set_children(self, db: sqlite3.Connection, parent: str, children: Sequence[tuple[str, str]]) -> None:
        db.executemany(
            "INSERT INTO item_children VALUES (?, ?, ?, ?)",
            [(parent, position, key, child) for position, (key, child) in enumerate(children)],
        )

    def children(self, parent: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT c.key, i.* FROM item_children c JOIN items i ON i.uuid = c.child "
            "WHERE c.parent = ? ORDER BY c.position",
            (parent,),
        )

    def parents(self, child: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT i.* FROM item_children c JOIN items i ON i.uuid = c.parent WHERE c.child = ? ORDER BY i.name",
            (child,),
        )

    def patch_items(self, user: str, patches: dict[str, dict[str, Any]], validate: Any) -> list[str]:
        """Apply item patches atomically. ``clientMetadata`` *replaces* the item's metadata.

        ``validate(item_uuid, metadata)`` checks metadata against the organisation's schema first,
        so one bad value rejects the whole call before anything is written.
        """
        checked = {}
        for raw_uuid, patch in patches.items():
            row = self.item(user, raw_uuid)
            if patch.get("name") is not None and (not isinstance(patch["name"], str) or not patch["name"].strip()):
                raise InvalidArgument(f"item name {patch['name']!r} is not a non-empty string")
            metadata = patch.get("client_metadata")
            if metadata is not None:
                if not isinstance(metadata, dict):
                    raise InvalidArgument(f"clientMetadata of item {raw_uuid} must be an object, got {metadata!r}")
                validate(row["uuid"], metadata)
            checked[row["uuid"]] = patch
        with self.transaction() as db:
            for item_uuid, patch in checked.items():
                for column in ("name", "description"):
                    if patch.get(column) is not None:
                        db.execute(f"UPDATE items SET {column} = ? WHERE uuid = ?", (patch[column], item_uuid))
                if patch.get("client_metadata") is not None:
                    db.execute(
                        "UPDATE items SET client_metadata = ? WHERE uuid = ?",
                        (json.dumps(patch["client_metadata"]), item_uuid),
                    )
                db.execute("UPDATE items SET last_edited_at = ? WHERE uuid = ?", (now_iso(), item_uuid))
        return list(checked)

    def create_groups(self, user: str, folder_uuid: str, plans: Sequence[GroupPlan]) -> list[str]:
        """Store validated data groups atomically; members must be the user's items and not groups."""
        folder = self.folder(user, folder_uuid)
        for index, plan in enumerate(plans):
            for key, child in plan.children:
                member = self.item(user, child)
                if member["item_type"] == "group":
                    raise InvalidArgument(f"groups[{index}] key {key!r}: item {child} is itself a data group")
                if member["frame_of"] is not None:
                    raise InvalidArgument(f"groups[{index}] key {key!r}: item {child} is a frame of another item")
        created = []
        with self.transaction() as db:
            for plan in plans:
                group = NewItem(
                    folder=folder["uuid"], item_type="group", owner=user, storage_location="encord",
                    name=plan.name or "", client_metadata=plan.client_metadata, layout=plan.layout,
                    facts={"frame_count": len(plan.children)},
                )  # fmt: skip
                if not group.name:
                    group.name = f"data-group-{group.uuid[:8]}"
                self.insert_items(db, [group])
                self.set_children(db, group.uuid, plan.children)
                created.append(group.uuid)
        return created

    # --- deletion -------------------------------------------------------------------------------

    def delete_items(
        self, user: str, folder_uuid: str, item_uuids: Sequence[Any], remove_unused_frames: bool = True
    ) -> Deletion:
        """Delete items of one folder atomically (``POST folders/{uuid}/items/delete``); all rules first.

        Every item must exist (404), be the caller's (403) and sit directly in the folder (400). A frame
        of an image group, image sequence or DICOM series cannot be deleted on its own (400), but goes
        with its parent: removed with ``remove_unused_frames``, otherwise kept as a standalone item. A
        member of a data group is refused (400, naming the groups) unless its groups are deleted in the
        same call; deleting a group removes the group item, never its members. Data units linking a
        removed item into datasets (and a removed group's child units) go too, with their label rows.
        """
        requested = list(dict.fromkeys(parse_uuid(u, f"childUuids[{i}]") for i, u in enumerate(item_uuids)))
        if not requested:
            raise InvalidArgument("childUuids must name at least one item")
        with self.transaction() as db:
            folder = self.folder(user, folder_uuid)
            rows = {u: self._deletable(db, user, folder["uuid"], u) for u in requested}
            for item_uuid, row in rows.items():
                self._check_not_held(db, item_uuid, row, set(rows))
            frames = [
                r
                for r in _chunked(db, "SELECT uuid, blob_key FROM items WHERE frame_of IN ({marks})", requested)
                if r["uuid"] not in rows
            ]
            doomed = sorted(set(rows) | ({f["uuid"] for f in frames} if remove_unused_frames else set()))
            kept_frames = [] if remove_unused_frames else [f["uuid"] for f in frames]
            units, label_rows = _unlink_from_datasets(db, doomed)
            blob_keys = {r["blob_key"] for r in [*rows.values(), *frames] if r["blob_key"] and r["uuid"] in doomed}
            for sql in (
                "DELETE FROM item_children WHERE parent IN ({marks})",
                "DELETE FROM item_children WHERE child IN ({marks})",
                "DELETE FROM items WHERE uuid IN ({marks})",
            ):
                _chunked(db, sql, doomed)
            stamp = now_iso()
            db.executemany(
                "UPDATE items SET frame_of = NULL, last_edited_at = ? WHERE uuid = ?", [(stamp, u) for u in kept_frames]
            )
            used = _chunked(db, "SELECT blob_key FROM items WHERE blob_key IN ({marks})", sorted(blob_keys))
        return Deletion(
            removed_items=doomed,
            kept_frames=kept_frames,
            data_units=units,
            label_rows=label_rows,
            blob_keys=sorted(blob_keys - {r["blob_key"] for r in used}),
        )

    @staticmethod
    def _deletable(db: sqlite3.Connection, user: str, folder_uuid: str, item_uuid: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM items WHERE uuid = ?", (item_uuid,)).fetchone()
        if row is None or row["is_placeholder"]:
            raise NotFound(f"item {item_uuid} does not exist")
        if row["owner"] != user:
            raise Forbidden(f"you have no access to item {item_uuid}")
        if row["folder"] != folder_uuid:
            raise InvalidArgument(
                f"item {item_uuid} is not in folder {folder_uuid}; delete it through its folder {row['folder']}"
            )
        return row

    @staticmethod
    def _check_not_held(db: sqlite3.Connection, item_uuid: str, row: sqlite3.Row, wanted: set[str]) -> None:
        """A frame goes only with its parent, a group member only with (or after) its groups."""
        if row["frame_of"] is not None and row["frame_of"] not in wanted:
            raise InvalidArgument(
                f"item {item_uuid} is a frame of item {row['frame_of']}; delete that item and its frames go with it"
            )
        groups = db.execute(
            "SELECT i.uuid, i.name FROM item_children c JOIN items i ON i.uuid = c.parent "
            "WHERE c.child = ? AND i.item_type = 'group' ORDER BY i.name",
            (item_uuid,),
        ).fetchall()
        holding = [f"{g['uuid']} ({g['name']!r})" for g in groups if g["uuid"] not in wanted]
        if holding:
            raise InvalidArgument(
                f"item {item_uuid} is a member of data group {', '.join(holding)}; "
                "delete the group first, or in the same call"
            )

    def delete_folder(self, user: str, folder_uuid: str) -> list[str]:
        """Delete an empty folder (``DELETE folders/{uuid}``); returns the blob keys of its unused upload slots.

        Only the owner may (403); a folder that still holds items or folders, backs a dataset or has an
        upload job running is refused (400) so nothing is ever deleted by surprise.
        """
        with self.transaction() as db:
            folder = self.folder(user, folder_uuid)
            items = db.execute(
                "SELECT count(*) FROM items WHERE folder = ? AND is_placeholder = 0", (folder["uuid"],)
            ).fetchone()[0]
            subfolders = db.execute("SELECT count(*) FROM folders WHERE parent = ?", (folder["uuid"],)).fetchone()[0]
            if items or subfolders:
                raise InvalidArgument(
                    f"folder {folder['uuid']} is not empty: it holds {items} items and {subfolders} folders; "
                    "delete them first"
                )
            if _table_exists(db, "datasets"):
                backed = db.execute("SELECT hash FROM datasets WHERE backing_folder = ?", (folder["uuid"],)).fetchone()
                if backed is not None:
                    raise InvalidArgument(f"folder {folder['uuid']} is the backing folder of dataset {backed['hash']}")
            running = db.execute(
                "SELECT uuid FROM jobs WHERE folder = ? AND status = 'PENDING'", (folder["uuid"],)
            ).fetchone()
            if running is not None:
                raise InvalidArgument(f"folder {folder['uuid']} has upload job {running['uuid']} still running")
            slots = db.execute(
                "SELECT blob_key FROM items WHERE folder = ? AND is_placeholder = 1", (folder["uuid"],)
            ).fetchall()
            db.execute("DELETE FROM items WHERE folder = ? AND is_placeholder = 1", (folder["uuid"],))
            db.execute("DELETE FROM folders WHERE uuid = ?", (folder["uuid"],))
        return [r["blob_key"] for r in slots if r["blob_key"]]

    # --- jobs -----------------------------------------------------------------------------------

    def create_job(
        self,
        user: str,
        folder_uuid: str,
        units: Sequence[dict[str, Any]],
        ignore_errors: bool,
        file_name: str | None,
        integration_hash: str | None,
        options: dict[str, Any],
    ) -> str:
        job_uuid = new_uuid()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?)",
                (job_uuid, folder_uuid, user, int(ignore_errors), file_name, integration_hash,
                 json.dumps(options), now_iso()),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO job_units VALUES (?, ?, ?, 'PENDING', NULL, NULL, NULL, ?)",
                [(job_uuid, idx, json.dumps(unit), new_uuid()) for idx, unit in enumerate(units)],
            )
        return job_uuid

    def job(self, user: str, folder_uuid: str, job_uuid: str) -> sqlite3.Row:
        folder = self.folder(user, folder_uuid)
        row = self.query_one("SELECT * FROM jobs WHERE uuid = ?", (parse_uuid(job_uuid, "upload job"),))
        if row is None or row["folder"] != folder["uuid"]:
            raise NotFound(f"upload job {job_uuid} does not exist in folder {folder_uuid}")
        return row

    def job_units(self, job_uuid: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM job_units WHERE job = ? ORDER BY idx", (job_uuid,))

    def pending_jobs(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM jobs WHERE status = 'PENDING' ORDER BY created_at")

    def finish_unit(
        self, db: sqlite3.Connection, job_uuid: str, idx: int, status: str, item_uuid: str | None,
        name: str | None, error: str | None,
    ) -> None:  # fmt: skip
        db.execute(
            "UPDATE job_units SET status = ?, item_uuid = ?, name = ?, error = ? "
            "WHERE job = ? AND idx = ? AND status = 'PENDING'",
            (status, item_uuid, name, error, job_uuid, idx),
        )

    def settle_job(self, job_uuid: str) -> str:
        """Mark a job finished once no unit is pending; returns the job's status."""
        with self.transaction() as db:
            job = db.execute("SELECT * FROM jobs WHERE uuid = ?", (job_uuid,)).fetchone()
            counts = dict(
                db.execute(
                    "SELECT status, count(*) FROM job_units WHERE job = ? GROUP BY status", (job_uuid,)
                ).fetchall()
            )
            if job["status"] != "PENDING" or counts.get("PENDING"):
                return str(job["status"])
            failed = counts.get("ERROR", 0) and not job["ignore_errors"]
            status = "ERROR" if failed else "DONE"
            db.execute("UPDATE jobs SET status = ? WHERE uuid = ?", (status, job_uuid))
            return status

    def cancel_job(self, job_uuid: str) -> int:
        with self.transaction() as db:
            cancelled = db.execute(
                "UPDATE job_units SET status = 'CANCELLED' WHERE job = ? AND status = 'PENDING'", (job_uuid,)
            ).rowcount
            db.execute("UPDATE jobs SET status = 'CANCELLED' WHERE uuid = ? AND status = 'PENDING'", (job_uuid,))
        return int(cancelled)

    # --- metadata schemas -----------------------------------------------------------------------

    def metadata_schema(self, kind: str) -> sqlite3.Row | None:
        return self.query_one("SELECT * FROM metadata_schemas WHERE kind = ?", (kind,))

    def save_metadata_schema(self, kind: str, body: dict[str, Any]) -> None:
        stamp = now_iso()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO metadata_schemas VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(kind) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                (kind, new_uuid(), json.dumps(body), stamp, stamp),
            )


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {text[:80]!r}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {text[:80]!r}")
    return value


def _table_exists(db: sqlite3.Connection, name: str) -> bool:
    """Dataset and label tables belong to other modules; a bare store (no ``Backend``) has none."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _unlink_from_datasets(db: sqlite3.Connection, item_uuids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Remove the data units of deleted items (and the child units of deleted groups) with their label rows."""
    if not _table_exists(db, "data_units"):
        return [], []
    units = {r["hash"] for r in _chunked(db, "SELECT hash FROM data_units WHERE item_uuid IN ({marks})", item_uuids)}
    units |= {
        r["hash"] for r in _chunked(db, "SELECT hash FROM data_units WHERE parent_unit IN ({marks})", sorted(units))
    }
    unit_hashes = sorted(units)
    label_rows: list[str] = []
    if _table_exists(db, "label_rows"):
        sql = "SELECT label_hash FROM label_rows WHERE data_hash IN ({marks})"
        label_rows = sorted(r["label_hash"] for r in _chunked(db, sql, unit_hashes))
        _chunked(db, "DELETE FROM label_rows WHERE data_hash IN ({marks})", unit_hashes)
    _chunked(db, "DELETE FROM data_units WHERE hash IN ({marks})", unit_hashes)
    return unit_hashes, label_rows


def _chunked(db: sqlite3.Connection, sql: str, values: Sequence[str], size: int = 500) -> list[sqlite3.Row]:
    """Run ``sql`` (with ``{marks}`` for an ``IN`` list) over ``values`` in chunks; rows of every chunk."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        rows.extend(db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
    return rows
