"""Errors that speak the user's language: the field, the value, what is allowed."""


class GroklabError(Exception):
    """Base class of every error groklab raises on purpose (the CLI prints these without a traceback)."""


class ConfigError(GroklabError, ValueError):
    """A config field has a value that is not allowed."""


class RunDirError(GroklabError):
    """A run directory is missing, incomplete or corrupt."""
