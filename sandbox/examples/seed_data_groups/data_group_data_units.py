# Copied from the seed document data-groups.txt ("Get Data Group Data units"), line for line. Only the
# configuration lines (key path, IDs, file UUIDs, domain) read the environment instead, and lines
# marked "sandbox:" are added; tests/contract/test_seed_scripts.py runs it against the sandbox.
# ruff: noqa
# fmt: off
import os  # sandbox: the configuration below reads the environment
from encord import EncordUserClient

SSH_PATH=os.environ["ENCORD_SSH_KEY_FILE"] # Replace with the file path to your SSH private key
DATA_GROUP_ID=os.environ["DATA_GROUP_ID"] # Replace with the file ID for the Data Group

# Initialize the SDK client
user_client: EncordUserClient = EncordUserClient.create_with_ssh_private_key(
    ssh_private_key_path=SSH_PATH,
    # For US platform users use "https://api.us.encord.com"
    domain=os.environ.get("ENCORD_DOMAIN", "https://api.encord.com"),
)

# Fetch the Data Group as a storage item
data_group_item = user_client.get_storage_item(DATA_GROUP_ID)

print(f"Data Group: {data_group_item.name} ({data_group_item.uuid})")

for item in data_group_item.get_child_items():
    print(f"- UUID: {item.uuid}, Name: {item.name}")
