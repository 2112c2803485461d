"""Users, their API keys and their cloud integrations: who is calling, and which buckets they may read."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import Forbidden, NotFound

DDL = """
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (key_hex TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id));
CREATE TABLE IF NOT EXISTS integrations (
    uuid TEXT PRIMARY KEY, title TEXT NOT NULL, owner TEXT NOT NULL, config TEXT NOT NULL);
"""


def ensure_user(store: Database, email: str) -> str:
    row = store.query_one("SELECT id FROM users WHERE email = ?", (email,))
    if row:
        return str(row["id"])
    user_id = new_uuid()
    with store.transaction() as db:
        db.execute("INSERT INTO users VALUES (?, ?, ?)", (user_id, email, now_iso()))
    return user_id


def add_key(store: Database, user_id: str, key_hex: str) -> None:
    with store.transaction() as db:
        db.execute("INSERT OR REPLACE INTO keys VALUES (?, ?)", (key_hex.lower(), user_id))


def user_for_key(store: Database, key_hex: str) -> str | None:
    row = store.query_one("SELECT user_id FROM keys WHERE key_hex = ?", (key_hex,))
    return str(row["user_id"]) if row else None


def user_email(store: Database, user_id: str) -> str:
    row = store.query_one("SELECT email FROM users WHERE id = ?", (user_id,))
    return str(row["email"]) if row else "unknown@sandbox.local"


def add_integration(store: Database, owner: str, title: str, config: dict[str, Any], integration_uuid: str) -> str:
    with store.transaction() as db:
        db.execute(
            "INSERT INTO integrations VALUES (?, ?, ?, ?)",
            (integration_uuid, title, owner, json.dumps(config)),
        )
    return integration_uuid


def integrations(store: Database, owner: str) -> list[sqlite3.Row]:
    return store.query("SELECT * FROM integrations WHERE owner = ? ORDER BY title", (owner,))


def integration(store: Database, owner: str, integration_uuid: str) -> sqlite3.Row:
    row = store.query_one("SELECT * FROM integrations WHERE uuid = ?", (integration_uuid,))
    if row is None:
        raise NotFound(f"cloud integration {integration_uuid} does not exist")
    if row["owner"] != owner:
        raise Forbidden(f"you have no access to cloud integration {integration_uuid}")
    return row
