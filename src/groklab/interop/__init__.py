"""Meeting researchers in the tools they already use: TransformerLens, TensorBoard, Weights & Biases,
pandas/parquet, and plain safetensors (docs/checkpoints.md).

Every optional dependency is imported inside the function that needs it; a missing one raises
`MissingExtraError` naming the extra to install (`pip install "groklab[tl]"`, ...). Nothing heavy is
imported by `import groklab.interop`.
"""

from __future__ import annotations

# The one missing-extra helper lives in errors.py (every floor may use it); re-exported here for older callers.
from groklab.errors import MissingExtraError, require

__all__ = ["MissingExtraError", "require"]
