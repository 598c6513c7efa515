"""How an error that ends a command or a job becomes an exit code and one line for stderr.

`dealwatch` (pipeline.cli.common) and the scheduler's fresh process (`python -m
pipeline.jobs.nightly`) share it, so both say the same and exit the same: 1 for an error a person
can act on (bad config, a locked or busy database, ...), 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

from typing import NamedTuple

from models.errors import DealwatchError
from pipeline.jobs.runs import Terminated
from pipeline.storage.database import busy_message, is_busy


class ExitStatus(NamedTuple):
    code: int
    message: str  # one line, for stderr


def exit_status(exc: BaseException) -> ExitStatus | None:
    """The exit code and message for an error that ends a command or a job run; None for one
    that is a bug (let it raise, with its traceback)."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus(143 if isinstance(exc, Terminated) else 130, str(exc) or "interrupted")
    if isinstance(exc, DealwatchError):
        return ExitStatus(1, f"error: {exc}")
    if is_busy(exc):  # a driver's own error, raised past the store's wrapping (StoreBusy)
        return ExitStatus(1, f"error: {busy_message(exc)}")
    return None
