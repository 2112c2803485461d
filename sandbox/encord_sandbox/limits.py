"""Encord's limits the sandbox enforces, each stated once, with where Encord states it.

The sandbox answers as Encord does at these limits (a refusal naming the limit), so a client that stays within
them here stays within them against Encord. The sandbox's own choices (timeouts, page tokens, its blob store's
object size) are not limits of Encord's and stay with the code that makes them.
"""

from __future__ import annotations

MAX_GRID_UNITS = 12
"""Data units in a grid data group (Encord's data groups documentation: "up to 12")."""

MAX_GROUP_UNITS = 50
"""Data units in one data group of any layout (Encord's data groups documentation)."""

SPLIT_RANGE = (5.0, 95.0)
"""A custom layout's ``split_percentage``, inclusive (Encord's data groups documentation)."""

CAROUSEL_SIZE_RANGE = (10.0, 70.0)
"""A carousel layout's ``carousel_size``, inclusive (Encord's data groups documentation)."""

MAX_SEQUENCE_FRAMES = 32_767
"""Frames of one image sequence (``createVideo``): Encord's documented ceiling for an image sequence."""

MAX_ROWS_PER_CALL = 1000
"""Label rows per call (``Project.list_label_rows_v2`` bundles, label reads and saves): the SDK's
``maximum_labels_allowed`` answer."""

MAX_ITEMS_PER_DELETE = 1000
"""Storage items per bulk delete (the SDK sends ``StorageFolder.delete_items`` in bundles of this size)."""

MAX_ITEMS_PER_MOVE = 1000
"""Storage items per move (``StorageFolder.move_items_to_folder``). Encord documents no bound; the sandbox takes
what a bulk delete takes."""

PROJECTS_PAGE_SIZE = 100
"""Projects per page of a project listing (the SDK's default page for ``list_projects``)."""
