"""Encord's data-upload jobs, started exactly once and settled even after kill -9: the engine (:mod:`.engine`)
and the finisher of jobs a dead run left (:mod:`.finishing`). Uploads and registrations differ only in their
:class:`~prefect_encord.jobs.engine.JobKind`."""
