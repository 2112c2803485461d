"""The logger a task should use: the run's, or a plain one when the task's function is called directly."""

from __future__ import annotations

import logging
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging import get_logger, get_run_logger


def run_logger(name: str) -> logging.Logger | logging.LoggerAdapter[Any]:
    """Prefect's run logger inside a flow or task run (so messages reach the UI); ``name`` otherwise.

    Tasks are also called as plain functions (``task.fn(...)``, scripts, tests), where Prefect's run
    logger raises ``MissingContextError``.
    """
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger(name)
