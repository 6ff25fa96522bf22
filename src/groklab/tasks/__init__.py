"""Tasks: binary-operation tables and their splits. A task knows nothing about models."""

from groklab.tasks.dataset import Dataset, build_dataset, full_table
from groklab.tasks.ops import MODULAR_OPS, PERMUTATION_OPS, Operation, is_prime, mod_inverse_table, permutations

__all__ = [
    "Dataset",
    "build_dataset",
    "full_table",
    "MODULAR_OPS",
    "PERMUTATION_OPS",
    "Operation",
    "is_prime",
    "mod_inverse_table",
    "permutations",
]
