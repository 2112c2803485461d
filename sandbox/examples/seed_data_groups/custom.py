# Copied from the seed document data-groups.txt ("Simple Custom Layout"), line for line. Only the
# configuration lines (key path, IDs, file UUIDs, domain) read the environment instead, and lines
# marked "sandbox:" are added; tests/contract/test_seed_scripts.py runs it against the sandbox.
# ruff: noqa
# fmt: off
import os  # sandbox: the configuration below reads the environment
from uuid import UUID

from encord.orm.storage import DataGroupCustom
from encord.orm.storage import StorageItemType  # sandbox: used below, missing in the seed
from encord.user_client import EncordUserClient
from encord.orm.group_layout import (
    DataUnitTile,
    LayoutGrid,
    LayoutSettings,
    TileSettings,
)

# --- Configuration ---
SSH_PATH = os.environ["ENCORD_SSH_KEY_FILE"]  # Replace with the file path to your access key
FOLDER_ID = os.environ["FOLDER_ID"]  # Replace with the Folder ID
DATASET_ID = os.environ["DATASET_ID"]  # Replace with the Dataset ID
PROJECT_ID = os.environ["PROJECT_ID"]  # Replace with the Project ID
FILE_IDS = os.environ["FILE_IDS"].split(",")  # sandbox: the File IDs, comma-separated, in order

# --- Connect to Encord ---
user_client: EncordUserClient = EncordUserClient.create_with_ssh_private_key(
    ssh_private_key_path=SSH_PATH,
    # For US platform users use "https://api.us.encord.com"
    domain=os.environ.get("ENCORD_DOMAIN", "https://api.encord.com"),
)

folder = user_client.get_storage_folder(FOLDER_ID)

layout = LayoutGrid(
    direction="row",
    first=DataUnitTile(key="instructions"),
    second=DataUnitTile(key="image"),
    split_percentage=30,  # 30% for "instructions", 70% for "image"
)


layout_contents = {
    "instructions": UUID(FILE_IDS[0]),  # File ID
    "image": UUID(FILE_IDS[1]),        # File ID
}

settings = LayoutSettings(
    tile_settings={
        "instructions": TileSettings(is_read_only=True)
    }
)

group = folder.create_data_group(
    DataGroupCustom(
        name="example-custom-group",
        layout=layout,
        layout_contents=layout_contents,
        client_metadata={"key": "value"},
        settings=settings,
    )
)

# Add all the data groups in a folder to a Dataset
group_items = folder.list_items(item_types=[StorageItemType.GROUP])
d = user_client.get_dataset(DATASET_ID)
d.link_items([item.uuid for item in group_items])

# Add the Dataset with the Data Groups to a Project

p = user_client.get_project(PROJECT_ID)
rows = p.list_label_rows_v2(include_children=True)
