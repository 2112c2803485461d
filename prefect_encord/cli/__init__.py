"""The ``prefect-encord`` command line: the parser and its commands (:mod:`.main`), the main ingest command
(:mod:`.ingest_command`) and its example data. ``--help`` and refusals of arguments import neither Prefect
nor the Encord SDK, so they answer at once."""
