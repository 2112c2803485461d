"""Data-upload jobs: their tables (``models``), the runner that carries units out, the request specs it
reads, the media probes and the cloud fetchers."""
