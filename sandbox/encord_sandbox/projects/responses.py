"""The wire shapes of projects and ontologies, as the SDK's DTOs name their keys."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from encord_sandbox.db import Database
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.projects.models import ONTOLOGY_ADMIN


def ontology_dto(row: sqlite3.Row, role: int = ONTOLOGY_ADMIN) -> dict[str, Any]:
    return {
        "ontologyUuid": row["hash"],
        "title": row["title"],
        "description": row["description"],
        "editor": json.loads(row["editor"]),
        "createdAt": row["created_at"],
        "lastEditedAt": row["last_edited_at"],
        "userRole": role,
    }


def project_dto(store: Database, project: sqlite3.Row, role: int) -> dict[str, Any]:
    editor = store.query_one("SELECT editor FROM ontologies WHERE hash = ?", (project["ontology"],))
    return {
        "projectHash": project["hash"],
        "projectType": "workflow",
        "status": "inProgress",
        "title": project["title"],
        "description": project["description"],
        "createdAt": project["created_at"],
        "creatorEmail": organisation_models.user_email(store, project["owner"]),
        "lastEditedAt": project["last_edited_at"],
        "ontologyHash": project["ontology"],
        "editorOntology": json.loads(editor["editor"]) if editor else {"objects": [], "classifications": []},
        "userRole": role,
        "workflow": json.loads(project["workflow"]),
    }
