"""Process concerns: stop requests (Ctrl-C, SIGTERM), crash points for the kill -9 tests, the temporary
Prefect server and its watchdog, and the optional extras. Nothing here knows Encord."""
