"""Errors that speak the user's language: the field, the value, what is allowed."""

from __future__ import annotations

import sys
from types import ModuleType


class GroklabError(Exception):
    """Base class of every error groklab raises on purpose (the CLI prints these without a traceback)."""


class ConfigError(GroklabError):
    """A config field has a value that is not allowed.

    Deliberately not a ValueError: tyro wraps a ValueError raised while it builds a nested config into a
    multi-line box, while a GroklabError passes through to the CLI, which prints it as one line."""


class RunDirError(GroklabError):
    """A run directory is missing, incomplete or corrupt."""


class AnalysisError(GroklabError):
    """An analysis cannot run on this model, task or run directory (the message says why)."""


class MissingExtraError(GroklabError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, what: str, error: type[GroklabError] = MissingExtraError, hint: str = "") -> ModuleType:
    """Import `module` (an optional dependency) or raise a one-line `error` saying that `what` needs
    `pip install "groklab[extra]"` (then `hint`, e.g. the alternative that needs nothing). The one way groklab
    reports a missing extra (ARCHITECTURE.md)."""
    try:
        __import__(module)  # the import statement's hook, so a test can hide a package by patching it
    except ImportError as e:
        missing = getattr(e, "name", None) or module.split(".")[0]
        raise error(
            f"{what} needs the optional package {missing!r}, which is not installed; "
            f'install it with: pip install "groklab[{extra}]"' + (f" ({hint})" if hint else "")
        ) from None
    return sys.modules[module]
