"""Pure planning: turn listings, files and rules into Encord requests, without any I/O."""
