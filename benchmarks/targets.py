"""Targets of a benchmark, printed as PASS/FAIL lines (shared by the benchmark scripts)."""

from __future__ import annotations

from collections.abc import Sequence


def report_targets(title: str, checks: Sequence[tuple[bool, str]]) -> bool:
    """Print one PASS/FAIL line per check under ``title``; True if every check passed."""
    print(f"\nTargets ({title})")
    for passed, line in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {line}")
    return all(passed for passed, _ in checks)
