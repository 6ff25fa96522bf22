"""Binary operation tables of Power et al. (2022), mod a prime p and on the permutation group S_n.

Every table is computed with integer arithmetic in numpy (int64); the tests check each one against an
independent pure-Python brute force.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Operation:
    name: str
    group: str  # "modular" (elements 0..p-1) or "permutation" (elements of S_n)
    description: str
    needs_prime: bool = False  # uses the modular inverse
    nonzero_y: bool = False  # y = 0 is excluded from the table (division by zero)


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


def mod_inverse_table(p: int) -> np.ndarray:
    """inv[y] = y^(p-2) mod p (Fermat), the multiplicative inverse of y mod a prime p; inv[0] = 0 (unused)."""
    return np.array([pow(int(y), p - 2, p) if y else 0 for y in range(p)], dtype=np.int64)


# Modular operations. Each function takes int64 arrays x, y (broadcast against each other) and p.
def _div(x, y, p):
    return (x * mod_inverse_table(p)[y]) % p


def _div_odd_else_sub(x, y, p):
    return np.where(y % 2 == 1, _div(x, y, p), (x - y) % p)


_MODULAR: dict[str, tuple[Callable, str, bool, bool]] = {
    # name: (function, description, needs_prime, nonzero_y)
    "x+y": (lambda x, y, p: (x + y) % p, "addition mod p", False, False),
    "x-y": (lambda x, y, p: (x - y) % p, "subtraction mod p", False, False),
    "x*y": (lambda x, y, p: (x * y) % p, "multiplication mod p (Doshi et al.)", False, False),
    "x/y": (_div, "division mod p: x times the modular inverse of y; y = 0 excluded", True, True),
    "x/y if y odd else x-y": (
        _div_odd_else_sub,
        "x/y for odd y, x-y for even y (y = 0 is even, so it is kept)",
        True,
        False,
    ),
    "x^2+y^2": (lambda x, y, p: (x * x + y * y) % p, "sum of squares mod p", False, False),
    "x^2+xy+y^2": (lambda x, y, p: (x * x + x * y + y * y) % p, "quadratic form mod p", False, False),
    "x^2+xy+y^2+x": (lambda x, y, p: (x * x + x * y + y * y + x) % p, "quadratic form plus x mod p", False, False),
    "x^3+xy": (lambda x, y, p: (x * x % p * x + x * y) % p, "cubic mod p", False, False),
    "x^3+xy^2+y": (lambda x, y, p: (x * x % p * x + x * (y * y % p) + y) % p, "cubic mod p", False, False),
}

_PERMUTATION: dict[str, str] = {
    "x*y": "composition in S_n: (x*y)(i) = x(y(i))",
    "x*y*x^-1": "conjugation of y by x in S_n",
    "x*y*x": "x*y*x in S_n",
}

MODULAR_OPS: dict[str, Operation] = {
    name: Operation(name, "modular", desc, needs_prime, nonzero_y)
    for name, (_, desc, needs_prime, nonzero_y) in _MODULAR.items()
}
PERMUTATION_OPS: dict[str, Operation] = {name: Operation(name, "permutation", desc) for name, desc in _PERMUTATION.items()}
# Integer (not modular) addition, the task of Liu et al. (2022)'s toy model: answers 0..2p-2, so a task of
# this group has 2p-1 classes. As in the paper, x+y and y+x are one sample: the table has the p(p+1)/2 pairs
# x ≤ y. Its parallelograms i+j = m+n define the representation quality index.
INTEGER_OPS: dict[str, Operation] = {
    "x+y": Operation("x+y", "integer", "integer addition of 0..p-1, pairs x <= y, answers 0..2p-2 (Liu et al. 2022)"),
}
GROUPS = ("modular", "permutation", "integer")  # the groups whose task is a binary-operation table


def ops_for(group: str) -> dict[str, Operation]:
    return {"modular": MODULAR_OPS, "permutation": PERMUTATION_OPS, "integer": INTEGER_OPS}[group]


def integer_table(op: str, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All equations x + y = z over the integers for 0 ≤ x ≤ y < p. (x, y, z), int64 of shape (p(p+1)/2,) each."""
    if op not in INTEGER_OPS:
        raise KeyError(op)
    x, y = np.triu_indices(p)
    x, y = x.astype(np.int64), y.astype(np.int64)
    return x, y, x + y


def modular_table(op: str, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All equations x op y = z mod p. Returns (x, y, z), each int64 of shape (N,), in row-major (x, y) order."""
    fn = _MODULAR[op][0]
    ys = np.arange(1 if MODULAR_OPS[op].nonzero_y else 0, p, dtype=np.int64)
    xs = np.arange(p, dtype=np.int64)
    x, y = np.meshgrid(xs, ys, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    return x, y, fn(x, y, p).astype(np.int64)


def permutations(n: int) -> np.ndarray:
    """All n! permutations of range(n) in lexicographic order, shape (n!, n); row k is element k."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int64)


def permutation_table(op: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All equations x op y = z in S_n, as element indices into `permutations(n)`. Shapes (N,) each."""
    perms = permutations(n)  # (m, n)
    m = len(perms)
    # Rank a permutation by reading it as a base-n number; a lookup array maps that code to its index.
    weights = n ** np.arange(n - 1, -1, -1, dtype=np.int64)
    lookup = np.full(n**n, -1, dtype=np.int64)
    lookup[perms @ weights] = np.arange(m)

    def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # (a*b)(i) = a(b(i)) for index arrays a, b of equal shape
        return lookup[np.take_along_axis(perms[a], perms[b], axis=1) @ weights]

    inverse = lookup[np.argsort(perms, axis=1) @ weights]  # (m,)
    x, y = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    if op == "x*y":
        z = compose(x, y)
    elif op == "x*y*x^-1":
        z = compose(compose(x, y), inverse[x])
    elif op == "x*y*x":
        z = compose(compose(x, y), x)
    else:
        raise KeyError(op)
    return x, y, z
