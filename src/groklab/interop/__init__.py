"""Meeting researchers in the tools they already use: TransformerLens, TensorBoard, Weights & Biases,
pandas/parquet, and plain safetensors (docs/checkpoints.md).

Every optional dependency is imported inside the function that needs it; a missing one raises
`MissingExtraError` naming the extra to install (`pip install "groklab[tl]"`, ...). Nothing heavy is
imported by `import groklab.interop`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from groklab.errors import GroklabError


class MissingExtraError(GroklabError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError saying that `what` needs `pip install "groklab[extra]"`."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"{what} needs the optional package {module.split('.')[0]!r}, which is not installed ({e}); "
            f'install it with: pip install "groklab[{extra}]"'
        ) from None


__all__ = ["MissingExtraError", "require"]
