"""Typed pipeline failures, recorded in a status file so the launcher gets the type back from any runner.

A runner wraps an exception raised inside a DoFn in its own error type (and a remote worker's in a
string), so the DoFn writes ``_FAILURE.json`` in the output directory before raising, and
:func:`recorded` rebuilds the typed exception from it after the job has failed.
"""

from __future__ import annotations

import json
import logging
import posixpath

FAILURE_FILE = "_FAILURE.json"


class PipelineFailure(RuntimeError):
    """A failure the pipeline itself decided on (not a crash): the message is meant for the user."""


class ErrorBudgetExceeded(PipelineFailure):
    """More rows were dead-lettered than ``max_error_fraction`` allows."""


class NoRowsError(PipelineFailure):
    """The inputs held no rows at all."""


_TYPES: dict[str, type[PipelineFailure]] = {t.__name__: t for t in (ErrorBudgetExceeded, NoRowsError)}


class ReportedFailures(logging.Filter):
    """Drops a runner's log record of a :class:`PipelineFailure` (Beam logs the DoFn's exception with its
    traceback before it re-raises it): the launcher reports the failure itself, once, as a message."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        seen = 0
        while error is not None and seen < 20:  # the runner may wrap it; follow the chain
            if isinstance(error, PipelineFailure):
                return False
            error, seen = error.__cause__ or error.__context__, seen + 1
        return True


def record(output: str, failure: PipelineFailure) -> PipelineFailure:
    """Write ``failure`` to ``<output>/_FAILURE.json`` and return it, for ``raise record(...)``."""
    from apache_beam.io.filesystems import FileSystems

    text = json.dumps({"type": type(failure).__name__, "message": str(failure)})
    with FileSystems.create(posixpath.join(output, FAILURE_FILE), mime_type="application/json") as fh:
        fh.write(text.encode("utf-8"))
    return failure


def recorded(output: str) -> PipelineFailure | None:
    """The failure a run into ``output`` recorded, or None."""
    from apache_beam.io.filesystems import FileSystems

    path = posixpath.join(output, FAILURE_FILE)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as fh:
        status = json.loads(fh.read().decode("utf-8"))
    return _TYPES.get(status["type"], PipelineFailure)(status["message"])
