"""Every shell command of the README, run as printed, by a newcomer with nothing but make's virtual environment.

A newcomer's machine here is a fresh ``HOME`` (so ``~/.prefect`` is new), no ``PREFECT_HOME``, no Encord or AWS
credentials in the environment and make's ``.venv/bin`` first on the PATH. What the README leaves to the
reader is filled in as a reader would: a free port where a command names a fixed one, the run id or
project hash an earlier command printed, files of their own in ``footage/``. Long benchmarks run at a
smaller size (their size option given again after the README's own).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from encord import EncordUserClient
from encord_sandbox.bucket_notifier import S3Notifier
from encord_sandbox.emulators import free_port
from prefect.settings import PREFECT_API_URL

from prefect_encord.cli import example_data
from tests import readme
from tests.servers import wait_until_answering

BIN = Path(sys.executable).parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BUCKET_SECTION = "A bucket ingest against the sandbox, no cloud account"
UI_SECTION = "See it in the Prefect UI, with no Encord account"


class Newcomer:
    """A shell of a person following the README: runs commands in ``cwd`` with their environment."""

    def __init__(self, root: Path, cwd: Path) -> None:
        self.cwd = cwd
        self.cwd.mkdir(parents=True, exist_ok=True)
        (root / "home").mkdir(exist_ok=True)
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ENCORD_", "AWS_"))}
        self.env = {
            **keep,
            "HOME": str(root / "home"),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "NO_PROXY": "127.0.0.1,localhost",
            "COLUMNS": "200",  # the summary's ids on one line each
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        self.background: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}

    def run(self, command: str, timeout: float = 300) -> str:
        done = subprocess.run(
            ["bash", "-c", command], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, (
            f"{command}\nexited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
        return done.stdout

    def start(self, command: str) -> subprocess.Popen[str]:
        """A command the README ends with ``&``: started in the background, stopped with the test."""
        log = self.cwd.parent / f"background-{len(self.background)}.log"
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command.removesuffix('&').strip()}"],
            cwd=self.cwd, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.background.append(process)
        self.logs[process.pid] = log
        return process

    def output(self, process: subprocess.Popen[str]) -> str:
        return self.logs[process.pid].read_text()

    def stop(self) -> None:
        for process in reversed(self.background):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.background:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[Newcomer]:
    person = Newcomer(tmp_path, tmp_path / "project")
    try:
        yield person
    finally:
        person.stop()


def _claimed() -> tuple[list[re.Pattern[str]], set[str]]:
    """The command starts and section titles that the tests take from the README (found in their source); an
    f-string's fields stand for anything."""
    source = "\n".join(path.read_text() for path in Path(__file__).parent.rglob("*.py"))
    starts = re.findall(r'readme\.command\(\s*f?"((?:[^"\\]|\\.)*)"', source)
    sections = set(re.findall(r'readme\.section\(\s*"((?:[^"\\]|\\.)*)"', source))
    sections |= {BUCKET_SECTION, UI_SECTION}  # taken by name below
    patterns = [
        re.compile(
            ".*".join(re.escape(part) for part in re.split(r"\{[^}]*\}", start.encode().decode("unicode_escape")))
        )
        for start in starts
    ]
    return patterns, sections


def test_every_command_of_the_readme_is_run_by_a_test() -> None:
    starts, sections = _claimed()
    run_by_sections = {
        command.removesuffix("&").strip()
        for block in readme.blocks()
        if block.section in sections and block.language == "bash"
        for command in readme.shell_commands(block)
    }
    ci = (readme.ROOT / ".ci" / "run").read_text()
    unclaimed = [
        command
        for command in readme.all_commands()
        if command.removesuffix("&").strip() not in run_by_sections
        and not any(start.match(command) for start in starts)
        and not (command.startswith("make ") and f"\n{command}\n" in ci)  # `make test` is what CI runs
    ]
    assert not unclaimed, f"README commands no test runs: {unclaimed}"


@pytest.mark.parametrize("extra", ["s3", "gcs", "azure", "coco", "parquet", "all", "sandbox"])
def test_each_install_command_names_an_extra_that_installs(extra: str, tmp_path: Path) -> None:
    """``pip install 'prefect-encord[extra]'`` from this checkout, resolved (pip's dry run): the extra exists."""
    command = readme.command(f"pip install 'prefect-encord[{extra}]'")
    local = command.replace(
        "pip install 'prefect-encord[",
        f"{BIN}/pip install --dry-run --quiet --report {tmp_path}/r.json '{readme.ROOT}[",
    )
    done = subprocess.run(["bash", "-c", local], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "does not provide the extra" not in done.stderr, done.stderr
    (installed,) = [
        i for i in json.loads((tmp_path / "r.json").read_text())["install"] if i["metadata"]["name"] == "prefect-encord"
    ]
    assert extra in installed["requested_extras"]


def test_the_main_commands_and_a_bucket_ingest_as_the_readme_shows(prefect_harness: None, newcomer: Newcomer) -> None:
    newcomer.env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())  # one Prefect for all commands: quicker
    # The newcomer's own data: the bundled example's media, schema and manifest, under the README's names.
    example = example_data.write_example(newcomer.cwd.parent / "theirs")
    shutil.copytree(example["media"], newcomer.cwd / "footage")
    shutil.copy(example["schema"], newcomer.cwd / "schema.yaml")
    shutil.copy(example["manifest"], newcomer.cwd / "manifest.csv")
    prefect_home = Path(newcomer.env["HOME"]) / ".prefect"

    first = newcomer.run(readme.command("prefect-encord ingest"))
    assert "files: 8 created\n" in first and (newcomer.cwd / ".prefect-encord" / "example").is_dir()
    assert (prefect_home / "encord" / "sandbox" / "sandbox.sqlite3").is_file()  # "~/.prefect/encord/sandbox"

    own = newcomer.run(readme.command("prefect-encord ingest ./footage --folder cams/2026"))
    assert "files: 8 created\n" in own and "data groups: 2 created\n" in own and "project: 1 attached\n" in own
    project = re.search(rf"project Cams QA \(({UUID})\)", own)
    assert project, own

    # The bucket section, block by block: an S3 of one's own, the sandbox's integration, the blocks.
    s3_port = free_port()
    (shell, snippet) = readme.section(BUCKET_SECTION)
    for command in readme.shell_commands(shell):
        command = command.replace("5000", str(s3_port))
        if command.endswith("&"):
            wait_until_answering(f"http://127.0.0.1:{s3_port}", newcomer.start(command), "moto_server")
        elif command.startswith("encord-sandbox add-integration"):
            printed = newcomer.run(command)
            assert re.fullmatch(rf"{UUID}\n", printed), printed  # the UUID alone, as the README says
        else:
            newcomer.run(command)
    assert snippet.language == "python"
    (newcomer.cwd / "blocks.py").write_text(snippet.text.replace("5000", str(s3_port)))
    newcomer.run("python blocks.py")

    bucket = readme.command("prefect-encord ingest --bucket-block")
    registered = newcomer.run(bucket)
    assert re.search(r"files: 1 created\n", registered), registered  # footage/street.mp4
    again = newcomer.run(bucket)
    assert "created" not in again.split("files:")[-1].splitlines()[0], again
    bucket_run = re.search(rf"rollback ({UUID})", registered)
    assert bucket_run, registered

    undone = newcomer.run(readme.command("prefect-encord rollback").replace("<run id>", bucket_run.group(1)))
    assert "deleted 1, already gone 0, failed 0" in undone, undone

    exported = newcomer.run(readme.command("prefect-encord export-labels").replace("<project hash>", project.group(1)))
    assert (newcomer.cwd / "exports" / project.group(1) / "index.jsonl").is_file(), exported  # where it ran

    relay_port = free_port()
    relay = newcomer.start(readme.command("prefect-encord webhook-relay").replace("8787", str(relay_port)))
    wait_until_answering(f"http://127.0.0.1:{relay_port}/healthz", relay, "the webhook relay")
    assert httpx.get(f"http://127.0.0.1:{relay_port}/healthz").status_code == 200

    # The wiring section, against that relay and bucket; moto sends no notifications, so S3Notifier plays S3.
    by_hand = newcomer.run(readme.command("curl -sS -X POST").replace("8787", str(relay_port)))
    assert json.loads(by_hand) == {"accepted": 1, "new": 0, "probes": 1}, by_hand
    notifications = f"http://127.0.0.1:{relay_port}/buckets/notifications"
    with S3Notifier(f"http://127.0.0.1:{s3_port}", "raw", notifications):
        wired = newcomer.run(readme.command("prefect-encord check-notifications"))
    assert re.search(r"reached Prefect through the relay in [\d.]+ s", wired), wired


def test_the_sandbox_commands(newcomer: Newcomer) -> None:
    port = free_port()
    served = newcomer.start(readme.command("encord-sandbox serve --port 8765").replace("8765", str(port)))
    wait_until_answering(f"http://127.0.0.1:{port}/healthz", served, "encord-sandbox serve")
    printed = newcomer.run(readme.command("encord-sandbox add-integration --data-dir .encord-sandbox"))
    assert re.fullmatch(rf"{UUID}\n", printed), printed

    client = EncordUserClient.create_with_ssh_private_key(
        (newcomer.cwd / ".encord-sandbox" / "admin_ed25519").read_text(), domain=f"http://127.0.0.1:{port}"
    )
    titles = {integration.title for integration in client.get_cloud_integrations()}
    assert "media" in titles


@pytest.mark.parametrize(
    ("benchmark", "smaller"),
    [
        ("ingest_requests.py", "--cloud 200 --local 40 --seed-cloud 20 --seed-local 16"),
        ("scale.py", "--objects 2000"),
        ("chaos_report.py", "--files 20 --local 4"),
        ("cli_latency.py", "--repeat 1"),
        ("event_driven.py", "--uploads 3 --gap 0 --burst 30 --within 2"),
    ],
)
def test_each_benchmark_runs_at_a_smaller_size(benchmark: str, smaller: str) -> None:
    command = readme.command(f".venv/bin/python benchmarks/{benchmark}")
    done = subprocess.run(
        ["bash", "-c", f"{command} {smaller}"], cwd=readme.ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]  # 1: a target missed at this size
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert re.search(r"\d", done.stdout), done.stdout  # it printed its figures


def test_see_it_in_the_prefect_ui_with_no_encord_account(tmp_path: Path, newcomer: Newcomer) -> None:
    """The UI section from a checkout's root: a server, ``make demo`` into it, a sandbox, the block, deployments, a
    worker; then the ``ingest-directory`` run the section ends on, which the worker completes."""
    root = newcomer.cwd
    for name in ("Makefile", "pyproject.toml", "sandbox", "prefect_encord", "deployments", ".venv"):
        (root / name).symlink_to(readme.ROOT / name)
    api_port, sandbox_port = free_port(), free_port()
    newcomer.env["PREFECT_SERVER_API_PORT"] = str(api_port)  # `prefect server start`'s port, the command unchanged
    key_path = ""
    for command in (c for block in readme.section(UI_SECTION) for c in readme.shell_commands(block)):
        command = command.replace("4200", str(api_port)).replace("8765", str(sandbox_port))
        if command.startswith(". "):
            assert newcomer.run(f"{command} && command -v prefect-encord").strip() == str(BIN / "prefect-encord")
        elif command.startswith("export "):
            name, value = command.removeprefix("export ").split("=", 1)
            newcomer.env[name] = value
        elif command.startswith("prefect server start"):
            wait_until_answering(
                f"http://127.0.0.1:{api_port}/api/health", newcomer.start(command), "the Prefect server"
            )
        elif command.startswith("encord-sandbox serve"):
            served = newcomer.start(f"{command.removesuffix('&').strip()} --port {sandbox_port}")
            wait_until_answering(f"http://127.0.0.1:{sandbox_port}/healthz", served, "encord-sandbox serve")
            found = re.search(r"(/\S+admin_ed25519)", newcomer.output(served))
            assert found, newcomer.output(served)  # "prints its admin key's path"
            key_path = found.group(1)
        elif command.startswith("python -c"):
            newcomer.run(command.replace("PATH PRINTED ABOVE", key_path))
        elif command.endswith("&"):
            newcomer.start(command)
        else:
            newcomer.run(command)

    api = f"http://127.0.0.1:{api_port}/api"
    demo_runs = httpx.post(
        f"{api}/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    ).json()
    assert demo_runs, "make demo left no completed run in the UI's server"
    run = newcomer.run("prefect deployment run encord-ingest/ingest-directory")
    run_id = re.search(rf"UUID: ({UUID})", run)
    assert run_id, run
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = httpx.get(f"{api}/flow_runs/{run_id.group(1)}").json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(2)
    assert state["type"] == "COMPLETED", state
