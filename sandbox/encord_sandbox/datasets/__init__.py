"""Datasets and their data units (``models``, ``routes``): items linked into a dataset."""
