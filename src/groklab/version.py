"""The library version (also in pyproject.toml), on the bottom floor so the trainer and the presets can record it
in summary.json without importing the package facade above them."""

__version__ = "0.1.0"
