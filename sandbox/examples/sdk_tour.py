"""A tour of Encord storage using only the official ``encord`` SDK, runnable against the sandbox.

Against a running sandbox (``encord-sandbox serve``) whose admin has a local-directory
integration over ``--local-root`` and an S3 integration over ``--s3-endpoint``::

    python examples/sdk_tour.py --domain http://127.0.0.1:8765 --key .prefect-encord/sandbox/admin_ed25519 \
        --local-integration local-media --local-root /srv/media \
        --s3-integration s3-media --s3-endpoint http://127.0.0.1:5000 --s3-bucket media

With no ``--domain`` it starts an embedded sandbox and an S3 emulator (moto) itself, so it runs
on a fresh machine with no account. Everything it does to Encord goes through the SDK: create a
folder, upload each local media type, register cloud data from both integrations, build grid,
carousel and custom data groups, read child items and summaries, set the metadata schema and
bulk-update item metadata. It prints what it created.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
from encord import EncordUserClient
from encord.http.bundle import Bundle
from encord.metadata_schema import MetadataSchema
from encord.orm.group_layout import DataUnitTile, LayoutGrid, LayoutSettings, TileSettings
from encord.orm.storage import DataGroupCarousel, DataGroupCustom, DataGroupGrid, StorageItemType
from encord.storage import StorageFolder
from encord_sandbox import samples


@dataclass
class Target:
    """Where the tour runs: the Encord domain, the key, and the two integrations' locations."""

    domain: str
    key_path: Path
    local_integration: str
    local_root: Path
    s3_integration: str
    s3_endpoint: str
    s3_bucket: str


def upload_local_media(folder: StorageFolder, media: dict[str, Path]) -> None:
    print("\n== Local uploads (signed URL → PUT → registration job)")
    uploads = {
        "image": folder.upload_image(media["red.png"], title="red.png", client_metadata={"camera": "front"}),
        "video": folder.upload_video(media["clip.mp4"]),
        "audio": folder.upload_audio(media["tone.wav"]),
        "text": folder.upload_text(media["notes.txt"]),
        "pdf": folder.upload_pdf(media["report.pdf"]),
        "image group": folder.create_image_group([media["red.png"], media["blue.png"]], title="pair"),
        "image sequence": folder.create_image_sequence([media["red.png"], media["blue.png"]], title="sequence"),
        "DICOM series": folder.create_dicom_series(
            sorted(p for k, p in media.items() if k.endswith(".dcm")), title="ct"
        ),
    }
    for kind, item_uuid in uploads.items():
        print(f"  {kind:15} {item_uuid}")


def register_cloud_data(client: EncordUserClient, folder: StorageFolder, target: Target) -> None:
    print("\n== Cloud registration (JSON import spec, long-polled job)")
    integrations = {i.title: i.id for i in client.get_cloud_integrations()}
    local = (target.local_root / "green.jpg").as_uri()
    s3_image, s3_video = f"s3://{target.s3_bucket}/tour/blue.png", f"s3://{target.s3_bucket}/tour/clip.mp4"
    for title, spec in (
        (target.local_integration, {"images": [{"objectUrl": local, "clientMetadata": {"source": "local"}}]}),
        (target.s3_integration, {"images": [{"objectUrl": s3_image}], "videos": [{"objectUrl": s3_video}]}),
    ):
        job = folder.add_private_data_to_folder_start(integrations[title], {**spec, "skip_duplicate_urls": True})
        result = folder.add_private_data_to_folder_get_result(job)
        names = ", ".join(i.name for i in result.items_with_names)
        print(f"  {title}: job {job} {result.status.value}, items: {names}, unit errors: {len(result.unit_errors)}")


def build_data_groups(folder: StorageFolder) -> None:
    print("\n== Data groups")
    by_name = {i.name: i for i in folder.list_items()}
    image, video, text = by_name["red.png"].uuid, by_name["clip.mp4"].uuid, by_name["notes.txt"].uuid
    grid, carousel, custom = folder.create_data_groups(
        [
            DataGroupGrid(name="grid", layout_contents=[image, video]),
            DataGroupCarousel(name="carousel", layout_contents=[image, video, text]),
            DataGroupCustom(
                name="custom",
                layout_contents={"left": image, "right": text},
                layout=LayoutGrid(
                    direction="row",
                    first=DataUnitTile(key="left"),
                    second=DataUnitTile(key="right"),
                    split_percentage=60,
                ),
                settings=LayoutSettings(tile_settings={"right": TileSettings(title="Notes", is_read_only=True)}),
            ),
        ]
    )
    for name, group_uuid in (("grid", grid), ("carousel", carousel), ("custom", custom)):
        group = folder.list_items(item_types=[StorageItemType.GROUP], search=name)
        item = next(g for g in group if g.uuid == group_uuid)
        children = [c.name for c in item.get_child_items()]
        layout = item.get_summary().data_group
        keys = list(layout.layout_contents) if layout else []
        print(f"  {name:8} {group_uuid} children={children} layout keys={keys}")


def set_metadata(client: EncordUserClient, folder: StorageFolder) -> None:
    print("\n== Metadata schema and bulk metadata update")
    schema: MetadataSchema = client.metadata_schema()
    for key, add in (
        ("tour.camera", lambda k: schema.add_scalar(k, data_type="varchar")),
        ("tour.score", lambda k: schema.add_scalar(k, data_type="number")),
        ("tour.weather", lambda k: schema.add_enum(k, values=["rain", "sun"])),
    ):
        if not schema.has_key(key):
            add(key)
    schema.save()
    items = list(folder.list_items(item_types=[StorageItemType.IMAGE, StorageItemType.VIDEO]))
    with Bundle() as bundle:
        for index, item in enumerate(items):
            metadata = {"tour.camera": f"cam-{index}", "tour.score": index / 10, "tour.weather": "sun"}
            item.update(client_metadata=metadata, bundle=bundle)
    for item in folder.list_items(item_types=[StorageItemType.IMAGE, StorageItemType.VIDEO]):
        print(f"  {item.name:10} {item.client_metadata}")


def run(target: Target) -> None:
    client = EncordUserClient.create_with_ssh_private_key(ssh_private_key_path=target.key_path, domain=target.domain)
    media = samples.write_sample_tree(target.local_root)
    s3 = boto3.client("s3", endpoint_url=target.s3_endpoint, region_name="us-east-1")
    for name in ("blue.png", "clip.mp4"):
        s3.upload_file(str(media[name]), target.s3_bucket, f"tour/{name}")
    folder = client.create_storage_folder(f"sdk-tour-{uuid.uuid4().hex[:6]}", description="made by sdk_tour.py")
    print(f"Folder {folder.name} ({folder.uuid}) on {target.domain}")
    upload_local_media(folder, media)
    register_cloud_data(client, folder, target)
    build_data_groups(folder)
    set_metadata(client, folder)
    print(f"\n{sum(1 for _ in folder.list_items())} items in folder {folder.name}.")


@contextlib.contextmanager
def embedded_target() -> Iterator[Target]:
    """A sandbox and an S3 emulator in this process, for a run with no Encord account."""
    import logging
    import os

    from encord_sandbox.server import Sandbox
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "tour")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "tour")
    with tempfile.TemporaryDirectory(prefix="sdk-tour-") as tmp, Sandbox(Path(tmp) / "sandbox") as sandbox:
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        try:
            host, port = moto.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="tour-media")
            root = Path(tmp) / "media"
            sandbox.add_integration("local-media", "local", root=str(root))
            sandbox.add_integration("s3-media", "s3", endpoint_url=endpoint, region="us-east-1")
            yield Target(
                sandbox.domain, sandbox.private_key_path, "local-media", root, "s3-media", endpoint, "tour-media"
            )
        finally:
            moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", help="Encord or sandbox URL; omit to start an embedded sandbox")
    parser.add_argument("--key", type=Path, help="OpenSSH Ed25519 private key file")
    parser.add_argument("--local-integration", default="local-media")
    parser.add_argument("--local-root", type=Path, help="the local integration's root directory")
    parser.add_argument("--s3-integration", default="s3-media")
    parser.add_argument("--s3-endpoint", help="S3 endpoint URL of the S3 integration")
    parser.add_argument("--s3-bucket", default="tour-media")
    args = parser.parse_args()
    if args.domain is None:
        with embedded_target() as target:
            run(target)
        return
    if not (args.key and args.local_root and args.s3_endpoint):
        parser.error("--domain needs --key, --local-root and --s3-endpoint")
    run(
        Target(
            args.domain,
            args.key,
            args.local_integration,
            args.local_root,
            args.s3_integration,
            args.s3_endpoint,
            args.s3_bucket,
        )
    )


if __name__ == "__main__":
    main()
