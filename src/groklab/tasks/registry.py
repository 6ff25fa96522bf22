"""Every task group, with a one-line description and the paper it comes from (`groklab tasks`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskInfo:
    group: str
    description: str
    paper: str
    fields: str  # the task.* fields that matter for this group


TASKS: dict[str, TaskInfo] = {
    t.group: t
    for t in [
        TaskInfo(
            "modular", "binary-operation table mod p (x+y, x/y, x^2+y^2, ...), split by train_frac",
            "Power et al. 2022 (arXiv 2201.02177); Nanda et al. 2023; Doshi et al. 2023",
            "op, p, train_frac, corrupt_frac, seed",
        ),
        TaskInfo(
            "permutation", "binary-operation table on the permutation group S_n (x*y, x*y*x^-1, x*y*x)",
            "Power et al. 2022 (arXiv 2201.02177)", "op, n, train_frac, corrupt_frac, seed",
        ),
        TaskInfo(
            "integer", "integer addition x+y of 0..p-1 (2p-1 answers); logs the representation quality index (RQI)",
            "Liu et al. 2022, effective theory of representation learning (arXiv 2205.10343)",
            "p, train_frac, corrupt_frac, rqi_tol, seed",
        ),
        TaskInfo(
            "parity", "(n, k)-sparse parity of ±1 bits; logs the weight mass on the k relevant inputs",
            "Barak et al. 2022 (arXiv 2207.08799); Merrill et al. 2023 (arXiv 2303.11873)",
            "n_bits, k, labels (sign|class), train_size, val_size, corrupt_frac, seed",
        ),
        TaskInfo(
            "images", "handwritten digits, 8x8 (scikit-learn's bundled copy of UCI digits, 1797 images, no download)",
            "Liu, Michaud & Tegmark 2023, Omnigrok (arXiv 2210.01117), MNIST scaled down",
            "images, train_size, val_size, corrupt_frac, seed",
        ),
        TaskInfo(
            "teacher", "regression on Gaussian inputs labelled by a random teacher MLP; hit rate within tol and R²",
            "Liu, Michaud & Tegmark 2023, Omnigrok (arXiv 2210.01117)",
            "d_in, d_out, teacher_width, teacher_depth, train_size, val_size, tol, seed",
        ),
        TaskInfo(
            "knowledge", "two-hop composition (h, r1, r2) -> t over a random knowledge graph; ID and OOD test splits",
            "Wang et al. 2024, grokked transformers are implicit reasoners (arXiv 2405.15071)",
            "n_entities, n_relations, out_degree, phi, ood_frac, id_test_frac, val_size (each test split), seed",
        ),
        TaskInfo(
            "dyck", "which bracket type closes next after a Dyck-k prefix; tree projections measure tree-structuredness",
            "Murty et al. 2023, grokking of hierarchical structure (arXiv 2305.18741)",
            "dyck_k, dyck_depth, dyck_len, train_size, val_size, seed",
        ),
        TaskInfo(
            "custom", "your own tensors from a .safetensors or .npz file (see docs/tasks.md)",
            "-", "path, sha256, labels, tol, train_frac (when the file has no split), corrupt_frac, seed",
        ),
    ]
}
TASK_GROUPS = tuple(TASKS)
VECTOR_GROUPS = ("parity", "images", "teacher")  # inputs are float vectors, not operand pairs


def describe(task) -> str:
    """A short title for a task config, e.g. for plots: `x+y mod 97, train fraction 0.5`."""
    g = task.group
    if g == "modular":
        what = f"{task.op} mod {task.p}, train fraction {task.train_frac}"
    elif g == "permutation":
        what = f"{task.op} in S_{task.n}, train fraction {task.train_frac}"
    elif g == "integer":
        what = f"{task.op} on 0..{task.p - 1}, train fraction {task.train_frac}"
    elif g == "parity":
        what = f"({task.n_bits}, {task.k})-sparse parity, {task.train_size} training samples"
    elif g == "images":
        what = f"{task.images}, {task.train_size} training images"
    elif g == "teacher":
        what = f"teacher–student, d_in {task.d_in}, {task.train_size} training samples"
    elif g == "dyck":
        what = f"Dyck-{task.dyck_k} prefixes up to {task.dyck_len} tokens, depth ≤ {task.dyck_depth}, {task.train_size} training samples"
    elif g == "knowledge":
        what = f"knowledge composition, {task.n_entities} entities, {task.n_relations} relations, φ = {task.phi}"
    else:
        what = f"custom data {task.path}"
    if task.corrupt_frac:
        what += f", corrupted {task.corrupt_frac}"
    return what
