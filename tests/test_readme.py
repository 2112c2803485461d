"""The README's Python snippets run as a newcomer would paste them: with their own imports, nothing else.

Each ```python block is executed in a fresh namespace, in a directory holding what it names (``footage/``),
against the session's sandbox saved as the block ``encord`` under the session's Prefect test harness.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from encord import EncordUserClient
from encord_sandbox import Sandbox, samples

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.flows.ingest_summary import IngestSummary
from tests import readme

#: The bucket section's snippet needs that section's S3 server: tests/test_readme_commands.py runs it in its place.
SNIPPETS = [
    block.text
    for block in readme.blocks()
    if block.language == "python" and block.section != "A bucket ingest against the sandbox, no cloud account"
]


def test_the_readme_has_python_snippets() -> None:
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("number", range(len(SNIPPETS)))
def test_a_readme_snippet_runs_as_written(
    number: int, prefect_harness: None, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_encord.testing import credentials_block

    credentials_block(sandbox).save("encord", overwrite=True)
    (tmp_path / "footage").mkdir()
    for n in range(3):
        (tmp_path / "footage" / f"frame-{n}.png").write_bytes(samples.png(color=(n, 60, 120)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_INTEGRATIONS_ENCORD_RUN_LEDGER_DIRECTORY", str(tmp_path / "runs"))
    namespace: dict[str, object] = {"tmp_path": tmp_path / "sandbox"}  # the one name a snippet may take as given

    exec(compile(SNIPPETS[number], f"README.md snippet {number + 1}", "exec"), namespace)  # noqa: S102

    # What each snippet leaves, checked for what it is: an ingest's summary, or the sandbox's client.
    checked = 0
    if isinstance(summary := namespace.get("summary"), IngestSummary):
        assert summary.created + summary.already_present == 3 and summary.failed == 0
        checked += 1
    if isinstance(own := namespace.get("sb"), Sandbox):  # a sandbox of its own, already stopped
        assert isinstance(namespace.get("client"), EncordUserClient)
        assert EncordCredentials.load("encord").domain == own.domain  # the block saved for flows points at it
        checked += 1
    assert checked, f"snippet {number + 1} left nothing this test knows how to check: {sorted(namespace)}"
