"""CLI options that would be ignored are refused before anything runs, one line each, exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prefect_encord.cli import build_parser
from prefect_encord.main_command import usage_problems

REFUSED = {
    "include-without-a-bucket": (["dir", "--include", "*.png"], "--include needs --bucket-block"),
    "include-with-the-example": (["--include", "*.png"], "--include needs --bucket-block"),
    "metadata-mode-without-a-manifest": (["dir", "--metadata-mode", "overwrite"], "--metadata-mode needs --manifest"),
    "layout-without-a-pattern": (["dir", "--layout", "carousel"], "--layout needs --group-pattern"),
    "project-without-a-dataset": (["dir", "--project", "p"], "--project needs --dataset"),
    "a-directory-and-a-bucket": (["dir", "--bucket-block", "encord-s3-integration/raw"], "not both"),
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
