"""EncordCredentials: key sources, domain rules, key errors and secrecy. No Prefect server needed."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from encord import EncordUserClient
from encord.configs import SshConfig
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr, ValidationError

from prefect_encord import EncordCredentials
from prefect_encord.blocks.credentials import ENCORD_SSH_KEY_ENV, ENCORD_SSH_KEY_FILE_ENV

OPENSSH_HEADER = "-----BEGIN OPENSSH PRIVATE KEY-----"


@dataclass(frozen=True)
class SshKey:
    text: str
    public_key_hex: str

    @property
    def secret_lines(self) -> list[str]:
        """The base64 body lines: any one of them appearing in output means key material leaked."""
        return [line for line in self.text.splitlines() if line and not line.startswith("-----")]


def _openssh_text(private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()


def _make_ed25519_key() -> SshKey:
    private_key = ed25519.Ed25519PrivateKey.generate()
    public_hex = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    return SshKey(text=_openssh_text(private_key), public_key_hex=public_hex)


def _public_key_hex(client: EncordUserClient) -> str:
    # EncordUserClient._config is a UserConfig wrapping the SshConfig that signs requests.
    config = client._config.config
    assert isinstance(config, SshConfig)
    return config.public_key_hex


def _domain(client: EncordUserClient) -> str:
    return client._config.domain


def _assert_no_key_material(text: str, key: SshKey) -> None:
    for line in key.secret_lines:
        assert line not in text


def _full_traceback(exc: BaseException) -> str:
    """Everything a logged traceback would show, chained exceptions included."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@pytest.fixture(autouse=True)
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's own Encord key env vars from leaking into these tests."""
    monkeypatch.delenv(ENCORD_SSH_KEY_FILE_ENV, raising=False)
    monkeypatch.delenv(ENCORD_SSH_KEY_ENV, raising=False)


@pytest.fixture
def ed25519_key() -> SshKey:
    return _make_ed25519_key()


@pytest.fixture
def key_file(tmp_path: Path, ed25519_key: SshKey) -> Path:
    path = tmp_path / "encord_ed25519"
    path.write_text(ed25519_key.text, encoding="ascii")
    return path


@pytest.fixture(scope="module")
def rsa_key_text() -> str:
    return _openssh_text(rsa.generate_private_key(public_exponent=65537, key_size=2048))


# --- Key sources -------------------------------------------------------------------------------


def test_client_from_key_content(ed25519_key: SshKey) -> None:
    client = EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text)).get_client()

    assert isinstance(client, EncordUserClient)
    assert _public_key_hex(client) == ed25519_key.public_key_hex
    assert _domain(client) == "https://api.encord.com"


def test_client_from_key_path(key_file: Path, ed25519_key: SshKey) -> None:
    client = EncordCredentials(ssh_private_key_path=key_file).get_client()

    assert _public_key_hex(client) == ed25519_key.public_key_hex


def test_key_path_expands_home(monkeypatch: pytest.MonkeyPatch, key_file: Path, ed25519_key: SshKey) -> None:
    monkeypatch.setenv("HOME", str(key_file.parent))

    client = EncordCredentials(ssh_private_key_path=Path("~") / key_file.name).get_client()

    assert _public_key_hex(client) == ed25519_key.public_key_hex


def test_env_key_file_fallback(monkeypatch: pytest.MonkeyPatch, key_file: Path, ed25519_key: SshKey) -> None:
    monkeypatch.setenv(ENCORD_SSH_KEY_FILE_ENV, str(key_file))

    assert _public_key_hex(EncordCredentials().get_client()) == ed25519_key.public_key_hex


def test_env_key_content_fallback(monkeypatch: pytest.MonkeyPatch, ed25519_key: SshKey) -> None:
    monkeypatch.setenv(ENCORD_SSH_KEY_ENV, ed25519_key.text)

    assert _public_key_hex(EncordCredentials().get_client()) == ed25519_key.public_key_hex


def test_env_key_file_wins_over_env_key_content(
    monkeypatch: pytest.MonkeyPatch, key_file: Path, ed25519_key: SshKey
) -> None:
    monkeypatch.setenv(ENCORD_SSH_KEY_FILE_ENV, str(key_file))
    monkeypatch.setenv(ENCORD_SSH_KEY_ENV, _make_ed25519_key().text)

    assert _public_key_hex(EncordCredentials().get_client()) == ed25519_key.public_key_hex


def test_block_key_wins_over_env(monkeypatch: pytest.MonkeyPatch, ed25519_key: SshKey) -> None:
    monkeypatch.setenv(ENCORD_SSH_KEY_ENV, _make_ed25519_key().text)

    client = EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text)).get_client()

    assert _public_key_hex(client) == ed25519_key.public_key_hex


def test_blank_key_content_counts_as_unset(monkeypatch: pytest.MonkeyPatch, ed25519_key: SshKey) -> None:
    monkeypatch.setenv(ENCORD_SSH_KEY_ENV, ed25519_key.text)

    credentials = EncordCredentials(ssh_private_key=SecretStr("  \n"))

    assert credentials.ssh_private_key is None
    assert _public_key_hex(credentials.get_client()) == ed25519_key.public_key_hex


def test_empty_env_vars_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENCORD_SSH_KEY_FILE_ENV, "")
    monkeypatch.setenv(ENCORD_SSH_KEY_ENV, "")

    with pytest.raises(ValueError, match="No Encord SSH private key is configured"):
        EncordCredentials().get_client()


def test_no_key_anywhere_names_every_option() -> None:
    with pytest.raises(ValueError) as exc_info:
        EncordCredentials().get_client()

    message = str(exc_info.value)
    for name in ("ssh_private_key", "ssh_private_key_path", ENCORD_SSH_KEY_FILE_ENV, ENCORD_SSH_KEY_ENV):
        assert name in message


def test_key_content_and_path_together_are_rejected(key_file: Path, ed25519_key: SshKey) -> None:
    with pytest.raises(ValidationError, match="either ssh_private_key or ssh_private_key_path") as exc_info:
        EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text), ssh_private_key_path=key_file)

    _assert_no_key_material(_full_traceback(exc_info.value), ed25519_key)


@pytest.mark.parametrize("via_env", [False, True], ids=["field", "env"])
def test_missing_key_file_names_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, via_env: bool) -> None:
    missing = tmp_path / "no_such_key"
    if via_env:
        monkeypatch.setenv(ENCORD_SSH_KEY_FILE_ENV, str(missing))
        credentials = EncordCredentials()
    else:
        credentials = EncordCredentials(ssh_private_key_path=missing)

    with pytest.raises(ValueError, match="Cannot read the Encord SSH private key") as exc_info:
        credentials.get_client()

    assert str(missing) in str(exc_info.value)
    assert (ENCORD_SSH_KEY_FILE_ENV in str(exc_info.value)) is via_env


# --- Key errors never show the key ----------------------------------------------------------------


def _corrupt(key: SshKey) -> str:
    """Keep the OpenSSH armour but flip the middle of the body, so parsing gets past the header."""
    lines = key.text.splitlines()
    middle = len(lines) // 2
    lines[middle] = lines[middle][::-1]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "make_bad_text",
    [
        _corrupt,
        lambda key: key.text.replace("OPENSSH PRIVATE KEY", "PRIVATE KEY"),
        lambda key: key.text[:120],
    ],
    ids=["corrupt-body", "wrong-armour", "truncated"],
)
def test_malformed_key_error_hides_key(ed25519_key: SshKey, make_bad_text: Callable[[SshKey], str]) -> None:
    bad_text = make_bad_text(ed25519_key)
    credentials = EncordCredentials(ssh_private_key=SecretStr(bad_text))

    with pytest.raises(ValueError, match="could not be loaded") as exc_info:
        credentials.get_client()

    assert "the ssh_private_key field" in str(exc_info.value)
    assert OPENSSH_HEADER in str(exc_info.value)  # the format hint, not the key
    _assert_no_key_material(_full_traceback(exc_info.value), SshKey(bad_text, ""))
    _assert_no_key_material(_full_traceback(exc_info.value), ed25519_key)


def test_malformed_key_file_error_names_path_not_key(tmp_path: Path, ed25519_key: SshKey) -> None:
    path = tmp_path / "broken_key"
    path.write_text(_corrupt(ed25519_key), encoding="ascii")

    with pytest.raises(ValueError, match="could not be loaded") as exc_info:
        EncordCredentials(ssh_private_key_path=path).get_client()

    assert str(path) in str(exc_info.value)
    _assert_no_key_material(_full_traceback(exc_info.value), ed25519_key)


def test_non_ascii_key_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "utf8_key"
    path.write_text("clé privée", encoding="utf-8")

    with pytest.raises(ValueError, match="is not ASCII text") as exc_info:
        EncordCredentials(ssh_private_key_path=path).get_client()

    assert exc_info.value.__cause__ is None


def test_rsa_key_is_rejected_without_echoing_it(rsa_key_text: str) -> None:
    # The SDK's own error for this case embeds the whole key; the block must not reach it.
    with pytest.raises(ValueError, match="RSAPrivateKey, not Ed25519") as exc_info:
        EncordCredentials(ssh_private_key=SecretStr(rsa_key_text)).get_client()

    _assert_no_key_material(_full_traceback(exc_info.value), SshKey(rsa_key_text, ""))


# --- Domain --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://api.encord.com", "https://api.encord.com"),
        ("https://api.us.encord.com/", "https://api.us.encord.com"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        (" HTTP://localhost:8765/ ", "http://localhost:8765"),
    ],
)
def test_domain_is_normalised_and_reaches_the_client(ed25519_key: SshKey, given: str, stored: str) -> None:
    credentials = EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text), domain=given)

    assert credentials.domain == stored
    assert _domain(credentials.get_client()) == stored


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("http://127.0.0.1:8765/encord", "no path"),
        ("https://api.encord.com/v2/", "no path"),
        ("https://api.encord.com/?region=us", "no path"),
        ("https://api.encord.com#frag", "no path"),
        ("api.encord.com", "absolute http"),
        ("ftp://api.encord.com", "absolute http"),
        ("https://", "absolute http"),
        ("http://127.0.0.1:99999", "invalid port"),
    ],
)
def test_bad_domain_is_rejected_naming_the_value(domain: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as exc_info:
        EncordCredentials(domain=domain)

    assert repr(domain) in str(exc_info.value)


@pytest.mark.parametrize("domain", ["https://user:hunter2@api.encord.com", "ftp://user:hunter2@host:99999/path"])
def test_domain_with_credentials_is_rejected_without_echoing_them(domain: str) -> None:
    with pytest.raises(ValidationError, match="must not embed credentials") as exc_info:
        EncordCredentials(domain=domain)

    assert "hunter2" not in str(exc_info.value)


# --- Secrecy and hashing -------------------------------------------------------------------------


def test_key_content_never_rendered(ed25519_key: SshKey) -> None:
    # A plain string, as users and saved block documents supply it, is wrapped as a secret.
    credentials = EncordCredentials.model_validate({"ssh_private_key": ed25519_key.text})

    rendered = [
        repr(credentials),
        str(credentials),
        str(credentials.model_dump()),
        str(credentials.model_dump(mode="json")),
        credentials.model_dump_json(),
    ]

    for text in rendered:
        _assert_no_key_material(text, ed25519_key)
    assert credentials.model_dump(mode="json")["ssh_private_key"] == "**********"


def test_key_content_is_a_prefect_secret_field() -> None:
    assert EncordCredentials._to_block_schema().fields["secret_fields"] == ["ssh_private_key"]


def test_hash_follows_field_values(ed25519_key: SshKey) -> None:
    first = EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text))
    same = EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text))
    other_domain = EncordCredentials(ssh_private_key=SecretStr(ed25519_key.text), domain="https://api.us.encord.com")

    assert hash(first) == hash(same)
    assert len({first, same, other_domain}) == 2


# --- Prefect block conventions -------------------------------------------------------------------


def test_block_type_is_found_by_slug() -> None:
    assert Block.get_block_class_from_key("encord-credentials") is EncordCredentials


class TestEncordCredentialsBlockStandards(BlockStandardTestSuite):
    """Prefect's own checks on description, documentation URL, field docs and code example."""

    @pytest.fixture
    def block(self) -> type[Block]:
        return EncordCredentials

    @pytest.mark.skip(reason="downloads the logo; the suite runs offline")
    def test_has_a_valid_image(self, block: type[Block]) -> None:
        pass
