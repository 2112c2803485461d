"""Ontologies and projects: what a project annotates (its datasets) and how (ontology, workflow).

A new project gets Encord's default workflow, Annotate → Review → Complete, with stable stage
UUIDs; its label rows are every top-level data unit of its attached datasets. A project created
without an ontology gets an empty one, as the SDK expects the server to do.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from encord_sandbox.datasets import models as datasets
from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import Forbidden, InvalidArgument, NotFound, parse_uuid
from encord_sandbox.organisation import access

DDL = """
CREATE TABLE IF NOT EXISTS ontologies (
    hash TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, editor TEXT NOT NULL,
    owner TEXT NOT NULL, created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    hash TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, ontology TEXT NOT NULL,
    owner TEXT NOT NULL, workflow TEXT NOT NULL, created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS project_datasets (
    project TEXT NOT NULL, dataset TEXT NOT NULL, PRIMARY KEY (project, dataset));
"""

DEFAULT_STAGES = (("ANNOTATION", "Annotate"), ("REVIEW", "Review"), ("DONE", "Complete"))
ONTOLOGY_ADMIN, ONTOLOGY_USER = 0, 1  # the SDK's OntologyUserRole


def create_ontology(store: Database, user: str, title: Any, description: str, editor: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise InvalidArgument(f"ontology title {title!r} must be a non-empty string")
    if not isinstance(editor, dict) or not isinstance(editor.get("objects", []), list):
        raise InvalidArgument("ontology editor must be an object with 'objects' and 'classifications' lists")
    editor = {"objects": [], "classifications": [], **editor}
    ontology_hash, stamp = new_uuid(), now_iso()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO ontologies VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ontology_hash, title, description or "", json.dumps(editor), user, stamp, stamp),
        )
    access.grant(store, "ontology", ontology_hash, user, ONTOLOGY_ADMIN)
    return ontology_hash


def ontology(store: Database, user: str, ontology_hash: str) -> sqlite3.Row:
    """An ontology the user may read: one they hold a role on, or the ontology of a project of theirs."""
    ontology_role(store, user, ontology_hash)
    row = store.query_one("SELECT * FROM ontologies WHERE hash = ?", (parse_uuid(ontology_hash, "ontology"),))
    assert row is not None
    return row


def ontology_role(store: Database, user: str, ontology_hash: str) -> int:
    """The user's role on an ontology; members of a project using it read it as users (404/403 otherwise).

    The SDK's ``get_project`` reads the project's ontology on its own route, so every project role
    must be able to read that ontology, not only its creator.
    """
    ontology_hash = parse_uuid(ontology_hash, "ontology")
    if store.query_one("SELECT 1 FROM ontologies WHERE hash = ?", (ontology_hash,)) is None:
        raise NotFound(f"ontology {ontology_hash} does not exist")
    role = access.role_of(store, "ontology", ontology_hash, user)
    if role is not None:
        return role
    via_project = store.query_one(
        "SELECT 1 FROM projects p JOIN roles r ON r.resource_type = 'project' AND r.resource = p.hash "
        "WHERE p.ontology = ? AND r.user_id = ?",
        (ontology_hash, user),
    )
    if via_project is None:
        raise Forbidden(f"you have no role on ontology {ontology_hash}")
    return ONTOLOGY_USER


def create_project(store: Database, user: str, payload: dict[str, Any]) -> str:
    """Create a project over datasets the user has a role on; everything checked before writing."""
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidArgument(f"project title {title!r} must be a non-empty string")
    dataset_hashes = _hashes(payload.get("dataset_hashes") or [], "dataset")
    for dataset_hash in dataset_hashes:
        access.require(store, "dataset", dataset_hash, user, access.ANY_DATASET_ROLE)
    if payload.get("workflow_template_id"):
        raise InvalidArgument("workflow templates are not supported by the sandbox; omit workflow_template_id")
    ontology_hash = payload.get("ontology_hash")
    if ontology_hash:
        ontology_hash = ontology(store, user, ontology_hash)["hash"]
    else:
        ontology_hash = create_ontology(store, user, f"{title} ontology", "", {"objects": [], "classifications": []})
    project_hash, stamp = new_uuid(), now_iso()
    workflow = {"stages": [{"stageType": kind, "uuid": new_uuid(), "title": name} for kind, name in DEFAULT_STAGES]}
    with store.transaction() as db:
        db.execute(
            "INSERT INTO projects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (project_hash, title, payload.get("description") or "", ontology_hash, user, json.dumps(workflow),
             stamp, stamp),
        )  # fmt: skip
        db.executemany("INSERT INTO project_datasets VALUES (?, ?)", [(project_hash, d) for d in dataset_hashes])
    access.grant(store, "project", project_hash, user, access.PROJECT_ADMIN)
    return project_hash


def get(store: Database, project_hash: str) -> sqlite3.Row:
    row = store.query_one("SELECT * FROM projects WHERE hash = ?", (project_hash,))
    if row is None:
        raise NotFound(f"project {project_hash} does not exist")
    return row


def list_for_user(store: Database, user: str, filters: datasets.TitleFilters, tags: Sequence[str]) -> list[sqlite3.Row]:
    """``GET /projects``: the projects the user holds a role on, oldest first, with the caller's role.

    The sandbox keeps no project tags (the organisation has none), so a tag filter matches nothing.
    """
    if tags:
        return []
    rows = store.query(
        "SELECT p.*, r.role FROM projects p JOIN roles r ON r.resource_type = 'project' AND r.resource = p.hash "
        "AND r.user_id = ? ORDER BY p.created_at, p.hash",
        (user,),
    )
    return [r for r in rows if filters.matches(r["title"], r["description"], r["created_at"], r["last_edited_at"])]


def stages(project: sqlite3.Row) -> list[dict[str, Any]]:
    return list(json.loads(project["workflow"])["stages"])


def dataset_hashes(store: Database, project_hash: str) -> list[str]:
    rows = store.query("SELECT dataset FROM project_datasets WHERE project = ? ORDER BY rowid", (project_hash,))
    return [str(r["dataset"]) for r in rows]


def add_datasets(store: Database, user: str, project_hash: str, hashes: Any) -> None:
    """Attach datasets (already attached ones are left as they are); the user needs a role on each."""
    checked = _hashes(hashes, "dataset")
    for dataset_hash in checked:
        access.require(store, "dataset", dataset_hash, user, access.ANY_DATASET_ROLE)
    with store.transaction() as db:
        db.executemany("INSERT OR IGNORE INTO project_datasets VALUES (?, ?)", [(project_hash, d) for d in checked])


def remove_datasets(store: Database, project_hash: str, hashes: Any) -> None:
    checked = _hashes(hashes if isinstance(hashes, list) else [hashes], "dataset")
    attached = set(dataset_hashes(store, project_hash))
    missing = [h for h in checked if h not in attached]
    if missing:
        raise NotFound(f"datasets {missing} are not attached to project {project_hash}")
    with store.transaction() as db:
        db.executemany(
            "DELETE FROM project_datasets WHERE project = ? AND dataset = ?", [(project_hash, d) for d in checked]
        )


def _hashes(values: Any, what: str) -> list[str]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise InvalidArgument(f"{what} hashes must be a list, got {values!r}")
    return list(dict.fromkeys(parse_uuid(v, what) for v in values))
