"""The CLI speaks to people: options that would be ignored are refused before anything runs (exit code 2),
credentials half set in the environment are an error, and an error is its message, its traceback only
under ``--debug``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from encord_sandbox import Sandbox, samples
from prefect.settings import PREFECT_API_URL

from prefect_encord.cli.ingest_command import usage_problems
from prefect_encord.cli.main import build_parser
from prefect_encord.testing import credentials_block

REFUSED = {
    "include-without-a-bucket": (["dir", "--include", "*.png"], "--include needs --bucket-block"),
    "include-with-the-example": (["--include", "*.png"], "--include needs --bucket-block"),
    "metadata-mode-without-a-manifest": (["dir", "--metadata-mode", "overwrite"], "--metadata-mode needs --manifest"),
    "layout-without-a-pattern": (["dir", "--layout", "carousel"], "--layout needs --group-pattern"),
    "project-without-a-dataset": (["dir", "--project", "p"], "--project needs --dataset"),
    "on-vanished-without-a-bucket": (["dir", "--on-vanished", "delete"], "--on-vanished needs --bucket-block"),
    "refresh-inventory-without-a-bucket": (["dir", "--refresh-inventory"], "--refresh-inventory needs --bucket-block"),
    "on-changed-without-a-bucket": (["dir", "--on-changed", "replace"], "--on-changed needs --bucket-block"),
    "dry-run-without-a-bucket": (["dir", "--dry-run"], "--dry-run needs --bucket-block"),
    "sidecars-without-a-bucket": (["dir", "--sidecars", ".metadata.json"], "--sidecars needs --bucket-block"),
    "unknown-keys-without-a-manifest": (["dir", "--allow-unknown-keys"], "--allow-unknown-keys needs --manifest or"),
    "max-deletions-without-deleting": (
        ["--bucket-block", "encord-s3-integration/raw", "--max-deletions", "5"],
        "--max-deletions needs --on-vanished archive or delete",
    ),
    "a-directory-and-a-bucket": (["dir", "--bucket-block", "encord-s3-integration/raw"], "not both"),
    "an-empty-folder": (["dir", "--folder", ""], "--folder is empty"),
    "own-data-options-with-the-example": (
        ["--schema", "s.yaml", "--layout", "grid"],
        "--schema, --layout: give a directory or --bucket-block",
    ),
}


def _problems(argv: list[str]) -> list[str]:
    return usage_problems(build_parser().parse_args(["ingest", *argv]))


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_option_that_would_be_ignored_is_refused(case: str) -> None:
    argv, message = REFUSED[case]
    problems = _problems(argv)
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--project", "mine", "--dataset", "mine"],  # the example, into a dataset and project of one's choosing
        ["dir", "--manifest", "m.csv", "--metadata-mode", "overwrite"],
        ["dir", "--group-pattern", "(?P<key>s)", "--layout", "carousel", "--dataset", "d", "--project", "p"],
        ["--bucket-block", "encord-s3-integration/raw", "--include", "*.png"],
        ["--bucket-block", "b/raw", "--on-vanished", "delete", "--max-deletions", "5", "--refresh-inventory"],
    ],
)
def test_options_with_what_they_need_pass(argv: list[str]) -> None:
    assert _problems(argv) == []


def test_the_cli_refuses_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).parent / "prefect-encord"), "ingest", str(tmp_path), "--project", "p",
               "--home", str(tmp_path / "home")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "prefect-encord ingest: --project needs --dataset"
    assert not (tmp_path / "home").exists()  # no sandbox started, no example written


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "prefect-encord"), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ENCORD_SSH_KEYFILE": "/k"}, "ENCORD_SSH_KEYFILE is set, but the variable read is ENCORD_SSH_KEY_FILE"),
        ({"ENCORD_DOMAIN": "https://api.us.encord.com"}, "ENCORD_DOMAIN is set but neither ENCORD_SSH_KEY_FILE"),
    ],
)
def test_credentials_half_set_in_the_environment_are_an_error_not_a_sandbox_run(
    variables: dict[str, str], message: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORD_")} | variables
    done = _cli("ingest", str(tmp_path), "--home", str(tmp_path / "home"), env=env)
    assert done.returncode == 1, done.stderr
    first, hint = done.stderr.strip().splitlines()
    assert first.startswith("prefect-encord ingest: ") and message in first
    assert hint == "(run again with --debug for the traceback)"
    assert not (tmp_path / "home" / "sandbox").exists()  # no sandbox was started


def test_a_flow_error_reaches_the_terminal_as_its_message_and_the_traceback_only_with_debug(
    prefect_harness: None, sandbox: Sandbox, tmp_path: Path
) -> None:
    credentials_block(sandbox).save("cli-errors", overwrite=True)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    argv = ("ingest", str(tmp_path / "nowhere"), "--credentials-block", "cli-errors", "--home", str(tmp_path))
    done = _cli(*argv, env=env)
    assert done.returncode == 1
    assert f"prefect-encord ingest: {tmp_path / 'nowhere'} is not a directory (it does not exist)" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    debug = _cli(*argv, "--debug", env=env)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_domain_fails_at_once_naming_it_before_anything_is_written(
    prefect_harness: None, tmp_path: Path
) -> None:
    """A domain where nothing listens: one line naming it, not a minute of retries ending in "not found"."""
    key = tmp_path / "encord-key"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "a.png").write_bytes(samples.png())
    domain = f"http://127.0.0.1:{_closed_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORD_")}
    env |= {"ENCORD_DOMAIN": domain, "ENCORD_SSH_KEY_FILE": str(key), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    started = time.monotonic()
    done = _cli("ingest", str(tmp_path / "media"), "--folder", "unreachable", "--home", str(tmp_path), env=env)
    print(f"failed after {time.monotonic() - started:.1f} s")
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("prefect-encord ingest: ")]
    assert line.startswith(f"prefect-encord ingest: cannot reach Encord at {domain} (")
    assert "ENCORD_DOMAIN" in line and "Traceback" not in done.stderr


def test_an_unreachable_prefect_api_is_one_line(tmp_path: Path) -> None:
    """PREFECT_API_URL pointing where nothing listens: named in one line, before any work, no traceback."""
    url = f"http://127.0.0.1:{_closed_port()}/api"
    env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    done = _cli("ingest", "--home", str(tmp_path / "home"), env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"prefect-encord ingest: the Prefect API at {url} (PREFECT_API_URL) does not answer: [Errno 111] Connection "
        "refused"
    ]
    assert not (tmp_path / "home").exists()  # no example written, no sandbox started


def test_an_unwritable_prefect_home_is_one_line_at_once(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("in the way")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {
        "PREFECT_HOME": str(tmp_path / "a-file" / "prefect")
    }
    started = time.monotonic()
    done = _cli("ingest", str(tmp_path), "--home", str(tmp_path / "home"), env=env)
    assert done.returncode == 1 and time.monotonic() - started < 30, done.stderr  # not Prefect's 180 s server wait
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"prefect-encord ingest: PREFECT_HOME {tmp_path / 'a-file' / 'prefect'} cannot be written")


def test_ctrl_c_while_prefect_is_imported_is_one_line_and_exit_130(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(tmp_path / "ph")}
    command = [str(Path(sys.executable).parent / "prefect-encord"), "ingest", str(tmp_path), "--home",
               str(tmp_path / "home")]  # fmt: skip
    # Ctrl-C's default for the child even when this test runs in a background job, which starts with SIGINT ignored
    # (a child inherits that, and Python then leaves it ignored).
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    time.sleep(0.4)  # past the arguments (0.07 s), within `import prefect` (about 1 s)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) <= 2, err
