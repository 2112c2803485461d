"""How fast the command line answers before it does anything: ``--help`` and refusals, beside ``import prefect``.

A person who mistypes an option should hear so at once, not after Prefect and the Encord SDK load and a
temporary Prefect server starts. This prints, from one run on one machine, the median wall time of:

* ``python -c "import prefect"`` (the floor of anything that uses Prefect);
* ``prefect-encord --help``;
* a refused argument (``prefect-encord ingest --max-failures x``, argparse's refusal, exit 2);
* an ignored option (``prefect-encord ingest dir --include x``, our refusal, exit 2);
* a directory that does not exist (refused before any sandbox or server starts, exit 1).

and exits 1 unless ``--help`` and both argument refusals take no longer than ``import prefect``.

    .venv/bin/python benchmarks/cli_latency.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _median_seconds(command: list[str], code: int, repeat: int, cwd: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
        times.append(time.perf_counter() - started)
        if done.returncode != code:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}, not {code}:\n{done.stderr}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (the median is printed)")
    args = parser.parse_args()
    cli = str(BIN / "prefect-encord")
    with tempfile.TemporaryDirectory() as work:
        cwd = Path(work)
        env = {"PATH": str(BIN), "HOME": work, "PREFECT_HOME": str(cwd / "prefect-home")}
        (cwd / "dir").mkdir()
        floor = _median_seconds([sys.executable, "-c", "import prefect"], 0, args.repeat, cwd, env)
        rows = [
            ("prefect-encord --help", [cli, "--help"], 0, True),
            ("refused argument (--max-failures x)", [cli, "ingest", "--max-failures", "x"], 2, True),
            ("ignored option (--include without a bucket)", [cli, "ingest", "dir", "--include", "x"], 2, True),
            ("missing directory (before any server)", [cli, "ingest", "nowhere"], 1, False),
        ]
        floor_label = 'python -c "import prefect"'
        print(f"{floor_label:48} {floor:6.2f} s")
        ok = True
        for label, command, code, bounded in rows:
            seconds = _median_seconds(command, code, args.repeat, cwd, env)
            verdict = ("PASS" if seconds <= floor else "FAIL") if bounded else "(no target)"
            ok &= not bounded or seconds <= floor
            print(f"{label:48} {seconds:6.2f} s  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
