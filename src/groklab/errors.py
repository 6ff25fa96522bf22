"""Errors that speak the user's language: the field, the value, what is allowed."""


class GroklabError(Exception):
    """Base class of every error groklab raises on purpose (the CLI prints these without a traceback)."""


class ConfigError(GroklabError):
    """A config field has a value that is not allowed.

    Deliberately not a ValueError: tyro wraps a ValueError raised while it builds a nested config into a
    multi-line box, while a GroklabError passes through to the CLI, which prints it as one line."""


class RunDirError(GroklabError):
    """A run directory is missing, incomplete or corrupt."""
