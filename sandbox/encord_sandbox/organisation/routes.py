"""Organisation-level routes: cloud integrations, the custom-metadata schemas, organisation tags."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from encord_sandbox.deps import Authenticated, Caller, backend_of
from encord_sandbox.organisation import metadata_schema
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.organisation.metadata_schema import check_schema_legacy, check_schema_v2

router = APIRouter(prefix="/v2/public")


@router.get("/cloud-integrations")
def cloud_integrations(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """Note the key is ``result``, not ``results`` (the routes in docs/sandbox.md)."""
    uuids = set(request.query_params.getlist("filterIntegrationUuids"))
    titles = set(request.query_params.getlist("filterIntegrationTitles"))
    rows = organisation_models.integrations(backend_of(request).store, caller.user)
    return {
        "result": [
            {"integrationUuid": r["uuid"], "title": r["title"]}
            for r in rows
            if (not uuids or r["uuid"] in uuids) and (not titles or r["title"] in titles)
        ]
    }


@router.get("/organisation/client-metadata-schema-v2")
def get_schema_v2(request: Request, caller: Caller = Authenticated) -> Any:
    return backend_of(request).metadata_schema()


@router.post("/organisation/client-metadata-schema-v2")
def save_schema_v2(request: Request, caller: Caller = Authenticated) -> Response:
    """Saving replaces the whole schema, as Encord's documentation warns."""
    metadata_schema.save(backend_of(request).store, "v2", check_schema_v2(caller.json()))
    return Response(content="null", media_type="application/json")


@router.get("/organisation/client-metadata-schema")
def get_schema_legacy(request: Request, caller: Caller = Authenticated) -> Any:
    row = metadata_schema.stored(backend_of(request).store, "legacy")
    if row is None:
        return None
    return {
        "uuid": row["uuid"],
        "metadataSchema": json.loads(row["body"]),
        "organisationId": 1,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


@router.post("/organisation/client-metadata-schema")
def save_schema_legacy(request: Request, caller: Caller = Authenticated) -> Response:
    metadata_schema.save(backend_of(request).store, "legacy", check_schema_legacy(caller.json()))
    return Response(content="null", media_type="application/json")


@router.get("/organisation/organisation-tags")
def organisation_tags(caller: Caller = Authenticated) -> dict[str, Any]:
    """The sandbox's organisation has no tags; the route exists so tag filters fail cleanly."""
    return {"results": [], "nextPageToken": None}
