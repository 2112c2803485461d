"""Encord's limits, each stated once, with where Encord states it.

Every module that pages, bundles, batches or checks a size imports its limit from here, so a limit Encord
changes is changed in one line. Our own choices (job sizes, concurrency, retry counts) are not limits and
stay with the code that makes them.
"""

from __future__ import annotations

MAX_PAGE_SIZE = 1000
"""Items per page of a listing (``StorageFolder.list_items``, ``EncordUserClient.find_storage_folders``,
``Project.list_label_rows_v2`` …). The SDK reference, Project: "page_size: Number of items to return per
page. Default if not specified is 100. Maximum value is 1000." """

MAX_BULK_ITEMS = 1000
"""Items per bulk call: a bulk lookup (``EncordUserClient.get_storage_items``), one bundled update, a bulk
delete, a link request. Encord's custom metadata guide (docs.encord.com, "Bulk import custom metadata"):
"Using bundle allows you to update up to 1000 label rows at a time"; the SDK refuses larger lookups. For
links Encord documents no limit, and one request per 1,000 items is cheap."""

MAX_UPLOAD_SLOTS = 1000
"""Signed upload URLs per request (the SDK's upload helpers ask with ``count`` from 1 to 1,000)."""

MAX_SEQUENCE_FRAMES = 32_767
"""Frames of one image sequence (``createVideo``): Encord's documented ceiling for an image sequence."""

MAX_TITLE_LENGTH = 300
"""Characters of a file name, which is what a data unit's title becomes (Encord's Files documentation)."""

MAX_GRID_UNITS = 12
"""Data units in a grid data group (Encord's data groups documentation: "up to 12")."""

MAX_GROUP_UNITS = 50
"""Data units in one data group of any layout (Encord's data groups documentation)."""

SPLIT_PERCENTAGE_RANGE = (5.0, 95.0)
"""A custom layout's ``split_percentage``, inclusive (Encord's data groups documentation)."""

CAROUSEL_SIZE_RANGE = (10.0, 70.0)
"""A carousel layout's ``carousel_size``, inclusive (Encord's data groups documentation)."""

SIDECAR_SUFFIX_LENGTH = (1, 128)
"""Characters of a metadata sidecar's suffix, inclusive (Encord's cloud-synced folders, "Metadata sidecars":
``SidecarMatcherSuffix(suffix=...)``, 1 to 128 characters; ``.metadata.json`` by default)."""
