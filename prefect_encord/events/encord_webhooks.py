"""Encord's workflow webhooks as the relay reads them: the payload Encord posts, checked strictly, and the Prefect
event each one becomes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefect_encord.events.names import (
    TASK_COMPLETED_EVENT,
    TASK_SUBMITTED_EVENT,
)

EVENT_NAMES = {
    "task_submitted_event": TASK_SUBMITTED_EVENT,
    "task_sumbitted_event": TASK_SUBMITTED_EVENT,  # the spelling one version of Encord's docs shows
    "task_completed_event": TASK_COMPLETED_EVENT,
}


class WebhookPayload(BaseModel):
    """The ``payload`` object of a workflow task event; older docs use ``label_hash``/``data_hash``."""

    model_config = ConfigDict(extra="allow")

    project_hash: str = Field(min_length=1)
    data_hashes: list[str] = Field(default_factory=list)
    label_hashes: list[str] = Field(default_factory=list)
    data_hash: str | None = None
    label_hash: str | None = None

    @field_validator("data_hashes", "label_hashes", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """Encord's docs type ``data_hashes``/``label_hashes`` as string but name them as lists: accept both."""
        return [value] if isinstance(value, str) else value

    def rows(self) -> list[tuple[str, str | None]]:
        """``(label_hash, data_hash)`` pairs; data hashes pair by position when the lists line up."""
        labels = self.label_hashes or ([self.label_hash] if self.label_hash else [])
        data = self.data_hashes or ([self.data_hash] if self.data_hash else [])
        if len(data) == len(labels):
            return list(zip(labels, data, strict=True))
        if len(data) == 1:
            return [(label, data[0]) for label in labels]
        return [(label, None) for label in labels]


class EncordWebhook(BaseModel):
    """An Encord workflow webhook as documented: uid, version, source, event type, timestamp, payload."""

    model_config = ConfigDict(extra="allow")

    uid: str = Field(min_length=1)
    version: int = 1
    source: Literal["Encord"]
    event_type: str
    event_created_timestamp: datetime | None = None
    payload: WebhookPayload


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_webhook(body: bytes) -> EncordWebhook:
    """Validate a webhook body; raises :class:`WebhookRejected` (400) naming what is wrong."""
    try:
        raw = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise WebhookRejected(400, "the body must be a JSON object (an Encord webhook payload)")
    try:
        webhook = EncordWebhook.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise WebhookRejected(400, f"not an Encord webhook payload: {problems}") from exc
    if webhook.event_type not in EVENT_NAMES:
        expected = ["task_submitted_event", "task_completed_event"]
        raise WebhookRejected(400, f"event_type {webhook.event_type!r} is not relayed; expected one of {expected}")
    if not webhook.payload.rows():
        raise WebhookRejected(400, "payload names no label row: label_hashes is empty")
    return webhook
