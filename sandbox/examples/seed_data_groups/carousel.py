# Copied from the seed document data-groups.txt ("Data Group - Carousel"), line for line. Only the
# configuration lines (key path, IDs, file UUIDs, domain) read the environment instead, and lines
# marked "sandbox:" are added; tests/contract/test_seed_scripts.py runs it against the sandbox.
# ruff: noqa
# fmt: off
import os  # sandbox: the configuration below reads the environment
from uuid import UUID
from typing import List

from encord.constants.enums import DataType
from encord.objects.metadata import DataGroupMetadata
from encord.orm.storage import DataGroupCarousel, StorageItemType
from encord.user_client import EncordUserClient

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

created_group_uuids = folder.create_data_groups(
    [
        DataGroupCarousel(
            name="group-carousel-001",
            layout_contents=[
                UUID(FILE_IDS[0]), # Replace with File ID 
                UUID(FILE_IDS[1]), # Replace with File ID 
                UUID(FILE_IDS[2]), # Replace with File ID 
                UUID(FILE_IDS[3]), # Replace with File ID 
            ],
            client_metadata={"key": "value"},
        ),
        DataGroupCarousel(
            name="group-carousel-002",
            layout_contents=[
                UUID(FILE_IDS[4]), # Replace with File ID 
                UUID(FILE_IDS[5]), # Replace with File ID 
                UUID(FILE_IDS[6]), # Replace with File ID 
                UUID(FILE_IDS[7]), # Replace with File ID 
            ],
            client_metadata={"key": "value"},
        ),
        DataGroupCarousel(
            name="group-carousel-003",
            layout_contents=[
                UUID(FILE_IDS[8]), # Replace with File ID 
                UUID(FILE_IDS[9]), # Replace with File ID 
                UUID(FILE_IDS[10]), # Replace with File ID 
                UUID(FILE_IDS[11]), # Replace with File ID 
            ],
            client_metadata={"key": "value"},
        ),
    ]
)

print("✅ Created carousel groups:", created_group_uuids)

# --- Add all the Data Groups in a folder to a Dataset ---
group_items = folder.list_items(item_types=[StorageItemType.GROUP])
d = user_client.get_dataset(DATASET_ID)
d.link_items([item.uuid for item in group_items])

# --- Retrieve and inspect Data Group label rows ---
p = user_client.get_project(PROJECT_ID)
rows = p.list_label_rows_v2(include_children=True)

for row in rows:
    if row.data_type == DataType.GROUP:
        row.initialise_labels()
        assert isinstance(row.metadata, DataGroupMetadata)
        print(row.metadata.children)
