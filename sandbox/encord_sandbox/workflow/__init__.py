"""Workflow stages of a project: the area the humans-and-models-in-the-loop work fills in (``models``,
``responses``, ``routes``, as the other areas). Today a project's stages live in :mod:`..projects.models`
and label rows move between them in :mod:`..labels.models`."""
