"""Who may do what on datasets and projects: roles, granted per resource and checked on every call.

The v1 RPC scheme leaves ``ResourceID`` unsigned, so a valid signature proves only *who* is
calling; every call must then prove the caller holds a role on the resource it names. Creators
become admins. Roles follow Encord's: datasets have admin/user, projects admin, annotator,
reviewer, annotator & reviewer, team manager and viewer (the SDK's ``DatasetUserRole``/``ProjectUserRole``).
"""

from __future__ import annotations

from collections.abc import Collection

from encord_sandbox.db import Database
from encord_sandbox.errors import Forbidden, NotFound

DDL = """
CREATE TABLE IF NOT EXISTS roles (
    resource_type TEXT NOT NULL, resource TEXT NOT NULL, user_id TEXT NOT NULL, role INTEGER NOT NULL,
    PRIMARY KEY (resource_type, resource, user_id));
"""

DATASET_ADMIN, DATASET_USER = 0, 1
PROJECT_ADMIN, ANNOTATOR, REVIEWER, ANNOTATOR_REVIEWER, TEAM_MANAGER, VIEWER = 0, 1, 2, 3, 4, 5

DATASET_ROLES = {DATASET_ADMIN: "admin", DATASET_USER: "user"}
PROJECT_ROLES = {
    PROJECT_ADMIN: "admin",
    ANNOTATOR: "annotator",
    REVIEWER: "reviewer",
    ANNOTATOR_REVIEWER: "annotator & reviewer",
    TEAM_MANAGER: "team manager",
    VIEWER: "viewer",  # read-only: may list and fetch label rows, not create, save or move them
}
ANY_DATASET_ROLE = tuple(DATASET_ROLES)
ANY_PROJECT_ROLE = tuple(PROJECT_ROLES)
PROJECT_MANAGERS = (PROJECT_ADMIN, TEAM_MANAGER)
LABELLERS = (PROJECT_ADMIN, TEAM_MANAGER, ANNOTATOR, REVIEWER, ANNOTATOR_REVIEWER)


def grant(store: Database, resource_type: str, resource: str, user_id: str, role: int) -> None:
    with store.transaction() as db:
        db.execute("INSERT OR REPLACE INTO roles VALUES (?, ?, ?, ?)", (resource_type, resource, user_id, role))


def role_of(store: Database, resource_type: str, resource: str, user_id: str) -> int | None:
    row = store.query_one(
        "SELECT role FROM roles WHERE resource_type = ? AND resource = ? AND user_id = ?",
        (resource_type, resource, user_id),
    )
    return int(row["role"]) if row else None


def require(store: Database, resource_type: str, resource: str, user_id: str, allowed: Collection[int]) -> int:
    """The caller's role on the resource, if it is one of ``allowed``; otherwise 404 or 403."""
    table = {"dataset": "datasets", "project": "projects", "ontology": "ontologies"}[resource_type]
    if store.query_one(f"SELECT 1 FROM {table} WHERE hash = ?", (resource,)) is None:
        raise NotFound(f"{resource_type} {resource} does not exist")
    role = role_of(store, resource_type, resource, user_id)
    names = DATASET_ROLES if resource_type == "dataset" else PROJECT_ROLES
    if role is None:
        raise Forbidden(f"you have no role on {resource_type} {resource}")
    if role not in allowed:
        wanted = ", ".join(names.get(r, str(r)) for r in allowed)
        raise Forbidden(
            f"your role {names.get(role, role)!r} on {resource_type} {resource} does not allow this ({wanted})"
        )
    return role
