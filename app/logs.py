"""Logging set-up for the command line and the server: every handler masks personal data.

The app's own log lines carry ids, not what shoppers wrote; but an exception from a library may quote
its input (a prompt, an SQL parameter, a request body), and a traceback is logged whole. So the
masking is applied where lines leave the process, on the handlers, to the formatted message and the
traceback text alike (app/pii.py), whatever logger they came from.
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.pii import mask

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class MaskingFilter(logging.Filter):
    """Rewrites a record in place: the message with its arguments merged and masked, the traceback masked."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def mask_handler(handler: logging.Handler) -> logging.Handler:
    if not any(isinstance(f, MaskingFilter) for f in handler.filters):
        handler.addFilter(MaskingFilter())
    return handler


def configure(level: int = logging.WARNING, file: Path | None = None) -> None:
    """Root logging to stderr (and ``file``), every handler masking personal data."""
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(level)
    if file is not None:
        handler = logging.FileHandler(file, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    for handler in root.handlers:
        mask_handler(handler)
