"""Run the sandbox: in-process (``with Sandbox(dir) as sb:``) or as ``encord-sandbox serve``.

On first start a data directory gets its SQLite database, blob store, URL-signing secret and an
Ed25519 key pair (OpenSSH format, as the SDK requires) for an admin user; later starts reuse them,
so state and keys survive restarts. The server binds to loopback by default and is always served
at the root of host:port, because the SDK's ``urljoin`` drops any path prefix in the domain.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from encord_sandbox.app import create_app
from encord_sandbox.auth import public_key_hex
from encord_sandbox.backend import Backend
from encord_sandbox.chaos import ChaosConfig, ChaosMiddleware
from encord_sandbox.db import new_uuid
from encord_sandbox.jobs.integrations import IntegrationConfig
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.webhooks import EVENT_TYPES, WebhookDispatcher

if TYPE_CHECKING:
    from encord import EncordUserClient

ADMIN_EMAIL = "admin@sandbox.local"
ADMIN_KEY_NAME = "admin_ed25519"


def generate_key_pair(private_path: Path) -> str:
    """Write a new OpenSSH Ed25519 private key (mode 600) and its ``.pub``; return the public line."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    private_path.chmod(0o600)
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    private_path.with_suffix(".pub").write_text(public + "\n")
    return public


@dataclass(frozen=True)
class SandboxCredentials:
    """Where a sandbox answers and the admin's private key: all any Encord client needs to sign in.

    Kept free of any client library so that the sandbox needs neither Prefect nor the plugin; a Prefect
    user turns it into an ``EncordCredentials`` block with ``prefect_encord.testing.credentials_block``.
    """

    domain: str
    ssh_private_key_path: Path

    def get_client(self) -> EncordUserClient:
        """An ``EncordUserClient`` of the official SDK, signed in as the sandbox's admin."""
        from encord import EncordUserClient

        return EncordUserClient.create_with_ssh_private_key(
            ssh_private_key_path=str(self.ssh_private_key_path), domain=self.domain
        )


class Sandbox:
    """A local Encord: the official SDK talks to it over real HTTP with real signed requests.

    Example:
        ```python
        with Sandbox(Path(".sandbox")) as sb:
            client = sb.credentials().get_client()
            folder = client.create_storage_folder("cams")
        ```
    """

    def __init__(
        self,
        data_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        job_workers: int = 4,
        latency_ms: float = 0.0,
        webhook_url: str | None = None,
        chaos: ChaosConfig | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.port = port
        self.backend = Backend(self.data_dir, job_workers=job_workers, latency_ms=latency_ms, chaos=chaos)
        self.private_key_path = self.data_dir / ADMIN_KEY_NAME
        if not self.private_key_path.exists():
            generate_key_pair(self.private_key_path)
        self.admin_user = self.register_public_key(
            self.private_key_path.with_suffix(".pub").read_text(), email=ADMIN_EMAIL
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.webhooks = WebhookDispatcher(self.backend.store)
        if webhook_url:  # for this process only; add_webhook() subscribes for good
            self.webhooks.add(webhook_url, persistent=False)

    @property
    def domain(self) -> str:
        return f"http://{self.host}:{self.port}"

    def credentials(self) -> SandboxCredentials:
        """The domain and admin key of this sandbox (``.get_client()`` signs in with the SDK)."""
        return SandboxCredentials(domain=self.domain, ssh_private_key_path=self.private_key_path)

    def register_public_key(self, openssh_public_key: str, email: str) -> str:
        """Let the holder of this key act as the user ``email`` (created if new); returns the user id."""
        user_id = organisation_models.ensure_user(self.backend.store, email)
        organisation_models.add_key(self.backend.store, user_id, public_key_hex(openssh_public_key))
        return user_id

    def add_integration(
        self,
        title: str,
        kind: str,
        owner_email: str = ADMIN_EMAIL,
        integration_uuid: str | None = None,
        **settings: Any,
    ) -> str:
        """Create a cloud integration the user can register data from; returns its UUID.

        ``kind`` is ``local`` (``root=``), ``s3`` (``endpoint_url=``, keys, ``region=``), ``gcs``
        (``gcs_endpoint=``) or ``azure`` (``azure_connection_string=``).
        """
        config = IntegrationConfig.of_kind(kind, settings)
        owner = organisation_models.ensure_user(self.backend.store, owner_email)
        return organisation_models.add_integration(
            self.backend.store, owner, title, config.to_dict(), integration_uuid or new_uuid()
        )

    def add_webhook(self, url: str, project_hash: str | None = None, events: tuple[str, ...] = EVENT_TYPES) -> str:
        """Send Encord workflow webhooks (task submitted/completed) to ``url``, kept in the data directory.

        ``project_hash`` limits it to one project; returns the subscription's id. See
        :mod:`encord_sandbox.webhooks` for the payloads and when they are sent.
        """
        return self.webhooks.add(url, project_hash=project_hash, events=events).id

    def remove_webhook(self, url: str) -> int:
        """Stop sending webhooks to ``url``; returns how many subscriptions were removed."""
        return self.webhooks.remove(url)

    def start(self) -> Sandbox:
        if self.port == 0:
            self.port = _free_port(self.host)
        app: Any = create_app(self.backend)
        if self.backend.chaos is not None:  # outside Starlette's middleware, where uvicorn's transport is reachable
            app = ChaosMiddleware(app, self.backend.chaos)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="encord-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start on {self.domain}")
            time.sleep(0.02)
        self.backend.runner.resume()
        self.webhooks.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self.webhooks.stop()
        self.backend.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve(
    data_dir: Path,
    host: str,
    port: int,
    latency_ms: float = 0.0,
    webhook_url: str | None = None,
    job_workers: int = 4,
    chaos: ChaosConfig | None = None,
) -> None:
    """Run the sandbox in the foreground until interrupted (``encord-sandbox serve``)."""
    sandbox = Sandbox(
        data_dir, host=host, port=port, latency_ms=latency_ms, webhook_url=webhook_url, job_workers=job_workers,
        chaos=chaos,
    ).start()  # fmt: skip
    print(f"Encord sandbox listening on {sandbox.domain}", flush=True)
    print(f"  data directory: {sandbox.data_dir}", flush=True)
    print(f"  admin private key: {sandbox.private_key_path}", flush=True)
    if chaos is not None:
        print(f"  chaos mode: {chaos} (counts at {sandbox.domain}/_chaos)", flush=True)
    for webhook in sandbox.webhooks.subscriptions():
        print(f"  workflow webhooks to: {webhook.url}", flush=True)
    print(
        f"  use it: EncordUserClient.create_with_ssh_private_key(ssh_private_key_path=..., domain={sandbox.domain!r})"
    )
    try:
        while sandbox._thread is not None and sandbox._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
