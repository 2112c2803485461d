# Copied from the seed document data-groups.txt ("Get Data Group Information"), line for line. Only the
# configuration lines (key path, IDs, file UUIDs, domain) read the environment instead, and lines
# marked "sandbox:" are added; tests/contract/test_seed_scripts.py runs it against the sandbox.
# ruff: noqa
# fmt: off
import os  # sandbox: the configuration below reads the environment
from encord import EncordUserClient
from encord.orm.storage import StorageItemType

# --- Configuration ---
SSH_PATH = os.environ["ENCORD_SSH_KEY_FILE"]  # Replace with the file path to your access key
FOLDER_ID = os.environ["FOLDER_ID"]  # Replace with the Folder ID

# --- Connect to Encord ---
user_client: EncordUserClient = EncordUserClient.create_with_ssh_private_key(
    ssh_private_key_path=SSH_PATH,
    # For US platform users use "https://api.us.encord.com"
    domain=os.environ.get("ENCORD_DOMAIN", "https://api.encord.com"),
)

folder = user_client.get_storage_folder(FOLDER_ID)

# Get Data Group Info
first_group = list(folder.list_items(item_types=[StorageItemType.GROUP]))[0]
summary = first_group.get_summary()
assert summary.data_group is not None
print(summary.data_group.layout_contents)
print(summary.data_group.layout)
print(summary.data_group.layout_settings)
