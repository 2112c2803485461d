"""The Encord credentials block: an SSH private key plus the API domain it is valid for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from prefect.blocks.abstract import CredentialsBlock
from prefect.blocks.core import Block
from prefect.blocks.core import schema_extra as block_schema_extra
from pydantic import ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator

if TYPE_CHECKING:  # the SDK takes a second to import; only get_client needs it
    from encord import EncordUserClient

ENCORD_DOMAIN = "https://api.encord.com"
"""Encord's EU (default) API domain; US accounts use ``https://api.us.encord.com``."""

#: How long :meth:`EncordCredentials.check_reachable` waits for any answer from the domain.
REACHABLE_TIMEOUT_SECONDS = 10.0

# The environment variables the Encord SDK itself falls back to: the key (a file first, then its text), the domain.
ENCORD_SSH_KEY_FILE_ENV = "ENCORD_SSH_KEY_FILE"
ENCORD_SSH_KEY_ENV = "ENCORD_SSH_KEY"
ENCORD_DOMAIN_ENV = "ENCORD_DOMAIN"

_KEY_FORMAT_HINT = (
    "Encord needs an unencrypted Ed25519 private key in OpenSSH format "
    "('-----BEGIN OPENSSH PRIVATE KEY-----'), as made by `ssh-keygen -t ed25519 -N ''`."
)


def _schema_extra(schema: dict[str, Any], model: type[Block]) -> None:
    """Prefect's block schema, plus: an object with a ``$ref`` key is a reference to a block, not this block.

    Prefect checks a run's parameters against ``oneOf`` [this schema, a ``{"$ref": …}`` reference]. Every
    field here is optional, so a reference would match both and be refused: the UI's block picker and a
    deployment's ``{"$ref": {"block_document_slug": "encord-credentials/encord"}}`` both send one. When a
    deployment is created, Prefect checks its parameters against the schema with every ``required`` removed,
    and the reference must pass there; ``if``/``then`` keeps both true (with ``required`` gone, the
    condition is empty and the consequence too). The Prefect UI drops ``if``/``then`` from the schema it
    validates a Custom Run form against, so ``domain`` is also listed as required (it keeps its default, which
    the UI fills in): a reference has no ``domain`` and matches only the reference there.
    """
    block_schema_extra(schema, model)
    schema["required"] = ["domain"]
    schema["if"] = {"required": ["$ref"]}
    schema["then"] = {"required": ["a block reference, not a block"]}


class EncordCredentials(CredentialsBlock):
    """Authenticates to Encord with an SSH private key registered on an Encord account.

    Give the key either as its content (`ssh_private_key`, stored encrypted by Prefect) or as
    a path to a key file on the machine that runs the flow (`ssh_private_key_path`). If
    neither is set, the key is read when the client is built from the same environment
    variables the Encord SDK uses: `ENCORD_SSH_KEY_FILE`, then `ENCORD_SSH_KEY`. That lets
    one saved block serve workers whose key is provisioned by their environment.

    Example:
        Load stored Encord credentials and build an SDK client:
        ```python
        from prefect_encord import EncordCredentials

        encord_credentials = EncordCredentials.load("BLOCK_NAME")
        user_client = encord_credentials.get_client()
        ```
    """

    # Pydantic's ValidationError messages echo the offending input, which could be the raw key
    # text; hide it (the domain errors below quote the value themselves).
    model_config = ConfigDict(hide_input_in_errors=True, json_schema_extra=_schema_extra)

    _block_type_name = "Encord Credentials"
    _logo_url = HttpUrl("https://github.com/encord-team.png?size=256")
    _documentation_url = HttpUrl("https://docs.encord.com/sdk-documentation/getting-started-sdk/authenticate-sdk")

    ssh_private_key: SecretStr | None = Field(
        default=None,
        title="SSH Private Key",
        description=("Content of the Ed25519 private key in OpenSSH format. Set this or the key path, not both."),
    )
    ssh_private_key_path: Path | None = Field(
        default=None,
        title="SSH Private Key Path",
        description=(
            "Path to the private key file on the machine that runs the flow; `~` is expanded. "
            "Set this or the key content, not both."
        ),
    )
    domain: str = Field(
        default=ENCORD_DOMAIN,
        title="API Domain",
        description=(
            "Base URL of the Encord API: https://api.encord.com (EU, default), "
            "https://api.us.encord.com (US), or a private or local deployment served at a host root."
        ),
    )

    @field_validator("ssh_private_key", mode="after")
    @classmethod
    def _blank_key_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        """Treat blank key content as unset, as the SDK does; forms often submit "" for empty fields."""
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("domain", mode="after")
    @classmethod
    def _validate_domain(cls, value: str) -> str:
        """Accept only a bare http(s) origin, returned without a trailing slash.

        The SDK builds its v2 URLs with ``urljoin``, which drops any path prefix, while its v1
        URLs keep it; a domain with a path would therefore send half the calls elsewhere.
        """
        parts = urlsplit(value.strip())
        # Checked first so that no later message echoes a password. "@" anywhere counts: a password holding
        # a "/" ends the authority early for urlsplit, which then finds no user-info at all.
        if "@" in value or parts.username is not None or parts.password is not None:
            raise ValueError("domain must not embed credentials; the SSH key is the credential.")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"domain must be an absolute http(s) URL such as {ENCORD_DOMAIN!r}, got {value!r}.")
        try:
            parts.port  # noqa: B018 - urlsplit only checks the port when it is read
        except ValueError as exc:
            raise ValueError(f"domain {value!r} has an invalid port: {exc}.") from exc
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(
                f"domain {value!r} must be a bare origin with no path, query or fragment: the Encord "
                "SDK joins its API paths onto the host root and would drop the path for some calls. "
                "Serve the API at the root of its host and port instead."
            )
        return urlunsplit((parts.scheme, parts.netloc, "", "", ""))

    @model_validator(mode="after")
    def _at_most_one_key_source(self) -> EncordCredentials:
        """Reject an ambiguous block rather than silently preferring one key over the other."""
        if self.ssh_private_key is not None and self.ssh_private_key_path is not None:
            raise ValueError("Set either ssh_private_key or ssh_private_key_path, not both.")
        return self

    def __hash__(self) -> int:
        """Hash over the fields, as prefect-aws does, so blocks can key client caches."""
        return hash((self.ssh_private_key, self.ssh_private_key_path, self.domain))

    def get_client(self) -> EncordUserClient:
        """Build an Encord SDK user client; no network call is made.

        Raises:
            ValueError: If no key is configured, the key cannot be read or parsed, or it is not
                an Ed25519 key. Messages name where the key came from but never its content.
        """
        key_text, source = self._resolve_private_key()
        _check_ed25519_key(key_text, source)
        # Only called with a key already known to load: the SDK's own error for a non-Ed25519
        # key embeds the whole key text.
        from encord import EncordUserClient

        return EncordUserClient.create_with_ssh_private_key(ssh_private_key=key_text, domain=self.domain)

    def check_reachable(self, timeout_seconds: float = REACHABLE_TIMEOUT_SECONDS) -> None:
        """Fail at once, naming the domain, if nothing answers there.

        The SDK retries a connection that fails, and so do the flows, which is right for a blip and wrong
        for a typo in the domain: a run would spend a minute retrying before its first write failed. Any
        HTTP answer will do (this is no API call and needs no key); only no answer at all is an error.

        Raises:
            ValueError: If the domain's host cannot be resolved, refuses the connection, or does not answer
                within ``timeout_seconds``.
        """
        import httpx

        try:
            httpx.get(self.domain, timeout=timeout_seconds, follow_redirects=False)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise ValueError(
                f"cannot reach Encord at {self.domain} ({reason}): check the domain "
                f"(the credentials block's, or {ENCORD_DOMAIN_ENV}) and this machine's network"
            ) from None

    def _resolve_private_key(self) -> tuple[str, str]:
        """Return the key text and a description of its source for error messages.

        The order matches the SDK: a key set on the block wins, then ENCORD_SSH_KEY_FILE, then
        ENCORD_SSH_KEY, each env var counting only when non-empty.
        """
        if self.ssh_private_key is not None:
            return self.ssh_private_key.get_secret_value(), "the ssh_private_key field"
        if self.ssh_private_key_path is not None:
            source = f"ssh_private_key_path {str(self.ssh_private_key_path)!r}"
            return _read_key_file(self.ssh_private_key_path, source), source
        if env_path := os.environ.get(ENCORD_SSH_KEY_FILE_ENV):
            source = f"the {ENCORD_SSH_KEY_FILE_ENV} environment variable ({env_path!r})"
            return _read_key_file(Path(env_path), source), source
        if env_key := os.environ.get(ENCORD_SSH_KEY_ENV):
            return env_key, f"the {ENCORD_SSH_KEY_ENV} environment variable"
        raise ValueError(
            "No Encord SSH private key is configured: set the block's ssh_private_key or "
            f"ssh_private_key_path field, or the {ENCORD_SSH_KEY_FILE_ENV} or {ENCORD_SSH_KEY_ENV} "
            "environment variable where the flow runs."
        )


def _read_key_file(path: Path, source: str) -> str:
    """Read a key file as ASCII (as the SDK does), reporting failures against the configured source."""
    try:
        return path.expanduser().read_text(encoding="ascii")
    except OSError as exc:
        raise ValueError(f"Cannot read the Encord SSH private key from {source}: {exc.strerror}.") from exc
    except UnicodeDecodeError:
        # The decode error's message quotes a byte of the file, so it is not chained.
        raise ValueError(f"The Encord SSH private key from {source} is not ASCII text. {_KEY_FORMAT_HINT}") from None


def _check_ed25519_key(key_text: str, source: str) -> None:
    """Parse the key as the SDK will, raising errors that name the source but not the key.

    cryptography's messages describe the key's structure ("Not OpenSSH private key format",
    "Key is password-protected...") without quoting it, so they are kept.
    """
    try:
        private_key = load_ssh_private_key(key_text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(
            f"The Encord SSH private key from {source} could not be loaded: {exc}. {_KEY_FORMAT_HINT}"
        ) from exc
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(
            f"The Encord SSH private key from {source} is a {type(private_key).__name__}, "
            f"not Ed25519. {_KEY_FORMAT_HINT}"
        )
