"""Cloud-synced folders: folders bound to a bucket URL, kept in step with it by sync jobs (see :mod:`.runner`)."""
