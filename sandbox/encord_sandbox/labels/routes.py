"""Label-row routes: the v1 RPC calls on a project's label rows (list, create, get, save, workflow moves)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from encord_sandbox.errors import InvalidArgument
from encord_sandbox.labels import models as labels
from encord_sandbox.organisation import access
from encord_sandbox.projects import models as projects
from encord_sandbox.rpc import Call, handles

#: No v2 routes: the SDK reads and writes label rows through the v1 RPC endpoint only.
router = APIRouter()


def _uids(call: Call) -> list[str]:
    uids = call.uid if isinstance(call.uid, list) else [call.uid]
    if not uids or not all(isinstance(u, str) and u for u in uids):
        raise InvalidArgument(f"uid {call.uid!r} must name one or more rows")
    return uids


@handles("labelrowmetadata", "GET", "project", access.ANY_PROJECT_ROLE)
def list_label_rows(call: Call) -> list[dict[str, Any]]:
    project = projects.get(call.backend.store, call.resource)
    return labels.list_metadata(call.backend.store, project, call.payload_dict())


@handles("labelrow", "PUT", "project", access.LABELLERS)
def create_label_rows(call: Call) -> list[dict[str, Any]]:
    project = projects.get(call.backend.store, call.resource)
    return labels.create(call.backend.store, project, _uids(call), call.payload_dict().get("branch_name"))


@handles("labelrow", "GET", "project", access.ANY_PROJECT_ROLE)
def get_label_rows(call: Call) -> list[dict[str, Any]]:
    project = projects.get(call.backend.store, call.resource)
    return labels.fetch(call.backend.store, project, _uids(call))


@handles("labelrow", "POST", "project", access.LABELLERS)
def save_label_rows(call: Call) -> bool:
    project = projects.get(call.backend.store, call.resource)
    payload = call.payload_dict()
    blobs = payload.get("labels") if payload.get("multi_request") else [payload]
    labels.save(call.backend.store, project, _uids(call), blobs)
    return True


@handles("labelworkflowgraphnode", "POST", "project", access.LABELLERS)
def move_in_workflow(call: Call) -> bool:
    project = projects.get(call.backend.store, call.resource)
    labels.workflow_action(call.backend.store, project, _uids(call), str(call.payload_dict().get("action")))
    return True
