"""Label rows of a project's data units (``models``, ``routes``)."""
