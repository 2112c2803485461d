"""What prefect-encord keeps on disk between runs: receipts (the run ledger), the job ledger, item maps, the
bucket inventory, folder locks, durable writes and the settings that say where they live.

Nothing here knows Encord: records are plain data written atomically, so a crash leaves either the old file
or the new one, and a later run or a rollback can read what an earlier one did.
"""
