"""What the config needs to know about tasks, in pure Python (no torch, no numpy).

The config validates `task.op`, `task.p` and `task.images` against these tables; the task modules that
build the data (ops.py, images.py, ...) import the config, never the other way round, so importing
`groklab.config` (and `groklab --help`, `groklab ops`) does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    name: str
    group: str  # "modular" (elements 0..p-1), "permutation" (elements of S_n) or "integer"
    description: str
    needs_prime: bool = False  # uses the modular inverse
    nonzero_y: bool = False  # y = 0 is excluded from the table (division by zero)


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


MODULAR_OPS: dict[str, Operation] = {
    o.name: o
    for o in [
        Operation("x+y", "modular", "addition mod p"),
        Operation("x-y", "modular", "subtraction mod p"),
        Operation("x*y", "modular", "multiplication mod p (Doshi et al.)"),
        Operation("x/y", "modular", "division mod p: x times the modular inverse of y; y = 0 excluded", True, True),
        Operation("x/y if y odd else x-y", "modular", "x/y for odd y, x-y for even y (y = 0 is even, so it is kept)", True),
        Operation("x^2+y^2", "modular", "sum of squares mod p"),
        Operation("x^2+xy+y^2", "modular", "quadratic form mod p"),
        Operation("x^2+xy+y^2+x", "modular", "quadratic form plus x mod p"),
        Operation("x^3+xy", "modular", "cubic mod p"),
        Operation("x^3+xy^2+y", "modular", "cubic mod p"),
    ]
}
PERMUTATION_OPS: dict[str, Operation] = {
    o.name: o
    for o in [
        Operation("x*y", "permutation", "composition in S_n: (x*y)(i) = x(y(i))"),
        Operation("x*y*x^-1", "permutation", "conjugation of y by x in S_n"),
        Operation("x*y*x", "permutation", "x*y*x in S_n"),
    ]
}
# Integer (not modular) addition, the task of Liu et al. (2022)'s toy model: answers 0..2p-2, so a task of
# this group has 2p-1 classes. As in the paper, x+y and y+x are one sample: the table has the p(p+1)/2 pairs
# x ≤ y. Its parallelograms i+j = m+n define the representation quality index.
INTEGER_OPS: dict[str, Operation] = {
    "x+y": Operation("x+y", "integer", "integer addition of 0..p-1, pairs x <= y, answers 0..2p-2 (Liu et al. 2022)"),
}
GROUPS = ("modular", "permutation", "integer")  # the groups whose task is a binary-operation table


def ops_for(group: str) -> dict[str, Operation]:
    return {"modular": MODULAR_OPS, "permutation": PERMUTATION_OPS, "integer": INTEGER_OPS}[group]


IMAGE_SETS = {"digits": 1797, "mnist": 5000}  # task.images name: number of images
