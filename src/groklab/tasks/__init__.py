"""Tasks: binary-operation tables, sparse parity, images, teacher–student regression and your own tensors,
with their splits (`groklab tasks`). A task knows nothing about models beyond the role names its metrics read."""

from groklab.tasks.custom import save_custom
from groklab.tasks.dataset import Dataset, build_dataset, full_table
from groklab.tasks.registry import TASKS
from groklab.tasks.ops import MODULAR_OPS, PERMUTATION_OPS, Operation, is_prime, mod_inverse_table, permutations

__all__ = [
    "Dataset",
    "save_custom",
    "TASKS",
    "build_dataset",
    "full_table",
    "MODULAR_OPS",
    "PERMUTATION_OPS",
    "Operation",
    "is_prime",
    "mod_inverse_table",
    "permutations",
]
