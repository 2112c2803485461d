"""What installing prefect-encord costs: disk, distributions and import time, beside Prefect itself.

Each install set goes into a fresh venv in a temporary directory; the venv's site-packages are measured
(bytes on disk, number of installed distributions) and a few imports are timed in a new interpreter.
The reference is ``prefect==3.9.1 prefect-aws`` (what a Prefect-on-AWS user already has); the target is
the base install at most 1.5x that. Two more checks: an environment that already holds Prefect 3.9.1 and
numpy 2 keeps both after ``pip install <repo>``, and the plugin's imports load no sandbox or media code.

    .venv/bin/python benchmarks/footprint.py            # base, each extra, all (about 10 minutes, from PyPI)
    .venv/bin/python benchmarks/footprint.py --only base

Needs the package registry (PyPI); prints one line per install set and exits non-zero if a target fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from targets import report_targets

REPO = Path(__file__).resolve().parent.parent
PREFECT = "prefect==3.9.1"
REFERENCE = [PREFECT, "prefect-aws"]
#: What the base set's venv holds before the plugin is installed: a user's existing environment.
USER_ENVIRONMENT = [PREFECT, "numpy>=2"]
# Installed together, as `make` does: the plugin's [sandbox] extra names the sandbox distribution.
SANDBOX = str(REPO / "sandbox")
SETS: dict[str, list[str]] = {
    "reference": REFERENCE,
    "base": [str(REPO)],  # into a venv that already holds USER_ENVIRONMENT
    "s3": [PREFECT, f"{REPO}[s3]"],
    "gcs": [PREFECT, f"{REPO}[gcs]"],
    "azure": [PREFECT, f"{REPO}[azure]"],
    "coco": [PREFECT, f"{REPO}[coco]"],
    "parquet": [PREFECT, f"{REPO}[parquet]"],
    "all": [PREFECT, f"{REPO}[all]"],
    "sandbox": [SANDBOX],
}
# Modules no plugin import may load: they belong to the sandbox or to optional extras.
FORBIDDEN = ("fastapi", "uvicorn", "av", "pypdf", "cv2", "pycocotools", "encord_sandbox", "pyarrow")
IMPORTS = ("prefect_encord", "prefect_encord.blocks", "prefect_encord.flows.ingest", "prefect_encord.cli.main")

_PROBE = """
import importlib, json, sys, time
start = time.perf_counter()
importlib.import_module(sys.argv[1])
elapsed = time.perf_counter() - start
roots = {name.split(".")[0] for name in sys.modules}
print(json.dumps({"seconds": elapsed, "loaded": sorted(roots & set(sys.argv[2].split(",")))}))
"""


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python*/site-packages"))
    return found[0]


def install(env: Path, requirements: list[str], preinstall: list[str] | None = None) -> None:
    venv.create(env, with_pip=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if preinstall:
        subprocess.run([*pip, *preinstall], check=True)
    subprocess.run([*pip, *requirements], check=True)


def measure(env: Path) -> tuple[float, int]:
    """(megabytes on disk, distributions) of a venv's site-packages, pip and setuptools excluded."""
    site = site_packages(env)
    dists = [d for d in site.glob("*.dist-info") if not d.name.startswith(("pip-", "setuptools-"))]
    total = sum(f.stat().st_size for f in site.rglob("*") if f.is_file() and not f.is_symlink())
    for own in ("pip", "setuptools"):
        total -= sum(f.stat().st_size for f in (site / own).rglob("*") if f.is_file())
    return total / 1e6, len(dists)


def probe_import(env: Path, module: str) -> dict[str, object]:
    """Import time (best of three fresh interpreters) and which forbidden modules the import loaded."""
    runs = []
    for _ in range(3):
        done = subprocess.run(
            [str(env / "bin" / "python"), "-c", _PROBE, module, ",".join(FORBIDDEN)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"seconds": min(r["seconds"] for r in runs), "loaded": runs[0]["loaded"]}


def versions(env: Path, *names: str) -> dict[str, str]:
    code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    out = subprocess.run([str(env / "bin" / "python"), "-c", code, *names], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(SETS), help="measure only these sets")
    args = parser.parse_args()
    chosen = args.only or list(SETS)
    if "base" in chosen and "reference" not in chosen:
        chosen.insert(0, "reference")
    sizes: dict[str, float] = {}
    checks: list[tuple[bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        for name in chosen:
            env = Path(tmp) / name
            install(env, SETS[name], preinstall=USER_ENVIRONMENT if name == "base" else None)
            megabytes, dists = measure(env)
            sizes[name] = megabytes
            line = f"{name:>10}: {megabytes:7.0f} MB, {dists:3d} distributions"
            if name != "reference" and name != "sandbox":
                probe = probe_import(env, "prefect_encord")
                line += f", import prefect_encord {probe['seconds']:.2f} s"
            print(line, flush=True)
            if name == "base":
                kept = versions(env, "prefect", "numpy")
                print(f"            kept: prefect {kept['prefect']}, numpy {kept['numpy']}")
                checks.append((kept["prefect"] == "3.9.1", f"base keeps prefect 3.9.1 (has {kept['prefect']})"))
                checks.append((kept["numpy"].startswith("2."), f"base keeps numpy 2 (has {kept['numpy']})"))
                for module in IMPORTS:
                    probe = probe_import(env, module)
                    print(f"            import {module}: {probe['seconds']:.2f} s, loads {probe['loaded'] or 'none'}")
                    checks.append((not probe["loaded"], f"import {module} loads no sandbox or extra module"))
    for tree in (REPO, REPO / "sandbox"):  # setuptools builds a non-editable install in the source tree
        shutil.rmtree(tree / "build", ignore_errors=True)
    if "base" in sizes:
        ratio = sizes["base"] / sizes["reference"]
        checks.append((ratio <= 1.5, f"base install {ratio:.2f}x prefect + prefect-aws (target <= 1.5x)"))
    return 0 if report_targets("footprint", checks) else 1


if __name__ == "__main__":
    sys.exit(main())
