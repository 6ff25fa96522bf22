"""Binary operation tables of Power et al. (2022), mod a prime p and on the permutation group S_n.

Every table is computed with integer arithmetic in numpy (int64); the tests check each one against an
independent pure-Python brute force.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

# The operations' names and properties live in meta.py (torch- and numpy-free, read by the config);
# re-exported here beside the functions that compute the tables.
from groklab.tasks.meta import GROUPS, INTEGER_OPS, MODULAR_OPS, PERMUTATION_OPS, Operation, is_prime, ops_for

__all__ = [
    "GROUPS", "INTEGER_OPS", "MODULAR_OPS", "PERMUTATION_OPS", "Operation", "is_prime", "ops_for",
    "mod_inverse_table", "integer_table", "modular_table", "permutations", "permutation_table",
]


def mod_inverse_table(p: int) -> np.ndarray:
    """inv[y] = y^(p-2) mod p (Fermat), the multiplicative inverse of y mod a prime p; inv[0] = 0 (unused)."""
    return np.array([pow(int(y), p - 2, p) if y else 0 for y in range(p)], dtype=np.int64)


# Modular operations. Each function takes int64 arrays x, y (broadcast against each other) and p.
def _div(x, y, p):
    return (x * mod_inverse_table(p)[y]) % p


def _div_odd_else_sub(x, y, p):
    return np.where(y % 2 == 1, _div(x, y, p), (x - y) % p)


_MODULAR: dict[str, Callable] = {
    # name: the table's function; its description and flags are MODULAR_OPS[name] (meta.py)
    "x+y": lambda x, y, p: (x + y) % p,
    "x-y": lambda x, y, p: (x - y) % p,
    "x*y": lambda x, y, p: (x * y) % p,
    "x/y": _div,
    "x/y if y odd else x-y": _div_odd_else_sub,
    "x^2+y^2": lambda x, y, p: (x * x + y * y) % p,
    "x^2+xy+y^2": lambda x, y, p: (x * x + x * y + y * y) % p,
    "x^2+xy+y^2+x": lambda x, y, p: (x * x + x * y + y * y + x) % p,
    "x^3+xy": lambda x, y, p: (x * x % p * x + x * y) % p,
    "x^3+xy^2+y": lambda x, y, p: (x * x % p * x + x * (y * y % p) + y) % p,
}
assert set(_MODULAR) == set(MODULAR_OPS)


def integer_table(op: str, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All equations x + y = z over the integers for 0 ≤ x ≤ y < p. (x, y, z), int64 of shape (p(p+1)/2,) each."""
    if op not in INTEGER_OPS:
        raise KeyError(op)
    x, y = np.triu_indices(p)
    x, y = x.astype(np.int64), y.astype(np.int64)
    return x, y, x + y


def modular_table(op: str, p: int, nonzero_y: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All equations x op y = z mod p (without y = 0 where the operation divides by y, or with `nonzero_y`).
    Returns (x, y, z), each int64 of shape (N,), in row-major (x, y) order."""
    fn = _MODULAR[op]
    ys = np.arange(1 if nonzero_y or MODULAR_OPS[op].nonzero_y else 0, p, dtype=np.int64)
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
