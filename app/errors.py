"""Shopdesk's exceptions. Translated to shopper-facing text only at the UI/API edge.

ShopdeskError
 +-- ConfigError          bad or missing setting (message names the setting and the fix)
 +-- InputError           a shopper message or request the assistant refuses (empty, too long)
 +-- StoreError           the shop database failed
 |    +-- StoreUnavailableError  it kept failing transiently (locked, restarting) after the retries (app/retry.py)
 +-- ModelError           a model could not be loaded or failed to produce output
 |    +-- GeneratorBusy   too many turns already waiting for the one local model (the template answers)
 +-- IndexNotBuiltError   the FAQ index or intent model is missing (message says which command builds it)
 +-- TranscriptError      an eval transcript is malformed (message names file and key)
"""


class ShopdeskError(Exception):
    """Base of every error Shopdesk raises on purpose."""


class ConfigError(ShopdeskError):
    pass


class InputError(ShopdeskError):
    pass


class StoreError(ShopdeskError):
    pass


class StoreUnavailableError(StoreError):
    pass


class ModelError(ShopdeskError):
    pass


class GeneratorBusy(ModelError):
    pass


class IndexNotBuiltError(ShopdeskError):
    pass


class TranscriptError(ShopdeskError):
    pass
