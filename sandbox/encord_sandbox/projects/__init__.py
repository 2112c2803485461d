"""Projects and ontologies (``models``, ``routes``)."""
