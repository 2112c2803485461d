"""The bundled example: a small, real dataset the main command ingests on a machine with no account.

Two camera scenes (front and rear PNGs, grouped into grid data groups by file name), a video, a PDF,
a text file and a three-slice DICOM series, plus a metadata schema and a manifest for them. The media
are generated (tiny but real: they are probed like any upload), so the package ships no binaries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from prefect_encord.planning.layouts import RolesLayout
from prefect_encord.testing import sandbox_samples

GROUP_PATTERN = r"(?P<key>scene-\d+)_(?P<role>front|rear)"
GROUP_LAYOUT = RolesLayout(style="grid", roles=["front", "rear"])
SCHEMA: dict[str, Any] = {
    "example.camera": "varchar",
    "example.weather": {"type": "enum", "values": ["fog", "rain", "sun"]},
    "example.score": "number",
}
MANIFEST = [
    ("scene-1_front.png", "front", "sun", 0.9),
    ("scene-1_rear.png", "rear", "sun", 0.7),
    ("scene-2_front.png", "front", "rain", 0.4),
    ("scene-2_rear.png", "rear", "fog", 0.2),
]


def write_example(root: Path) -> dict[str, Path]:
    """Write the example media, ``schema.yaml`` and ``manifest.csv`` under ``root``; returns their paths.

    Files already there are kept: generated media are not byte-for-byte reproducible (DICOM instance
    UIDs are random), and the example must be the same data on every run, so a re-run ingests nothing.
    """
    if (root / "manifest.csv").exists():
        return {"media": root / "media", "schema": root / "schema.yaml", "manifest": root / "manifest.csv"}
    samples = sandbox_samples("Generating the bundled example")
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    colours = {"scene-1": (200, 30, 30), "scene-2": (30, 30, 200)}
    for scene, colour in colours.items():
        (media / f"{scene}_front.png").write_bytes(samples.png(16, 12, colour))
        (media / f"{scene}_rear.png").write_bytes(samples.png(16, 12, tuple(255 - c for c in colour)))
    (media / "street.mp4").write_bytes(samples.mp4(frames=10, fps=5))
    (media / "report.pdf").write_bytes(samples.pdf(pages=2))
    (media / "notes.txt").write_bytes(samples.text("Example notes for the annotators."))
    series = media / "dicom" / "series-1"
    series.mkdir(parents=True, exist_ok=True)
    study, series_uid = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    for number in (1, 2, 3):
        (series / f"slice-{number}.dcm").write_bytes(samples.dicom(study, series_uid, instance_number=number))
    schema_file = root / "schema.yaml"
    schema_file.write_text(yaml.safe_dump(SCHEMA, sort_keys=True))
    manifest = root / "manifest.csv"
    rows = ["name,example.camera,example.weather,example.score"]
    rows += [f"{name},{camera},{weather},{score}" for name, camera, weather, score in MANIFEST]
    manifest.write_text("\n".join(rows) + "\n")
    return {"media": media, "schema": schema_file, "manifest": manifest}
