"""Storage: folders, items, data groups (``models``, ``responses``, ``routes``), and
the signed blob URLs uploads go to (``blob_routes``)."""
