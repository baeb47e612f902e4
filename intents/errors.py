"""Errors of the intents package. ``intents`` never imports ``app``, so it has its own base class; the
CLI reports these like ``app.errors.ShopdeskError`` (message, exit code 2).

IntentsError (a ValueError: all of these are bad input, never a bug)
 +-- MessageFileError   a bad ``shopdesk classify`` argument (e.g. a batch size below 1)
"""


class IntentsError(ValueError):
    pass


class MessageFileError(IntentsError):
    pass
