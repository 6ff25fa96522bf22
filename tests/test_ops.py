"""Every operation table against an independent brute force in plain Python integers."""

import itertools

import pytest

from groklab import ConfigError, TaskConfig
from groklab.tasks import MODULAR_OPS, PERMUTATION_OPS, full_table, permutations


def brute_modular(op, x, y, p):
    """Plain-Python reference; division is checked separately by z·y ≡ x."""
    if op == "x+y":
        return (x + y) % p
    if op == "x-y":
        return (x - y) % p
    if op == "x*y":
        return (x * y) % p
    if op == "x^2+y^2":
        return (x**2 + y**2) % p
    if op == "x^2+xy+y^2":
        return (x**2 + x * y + y**2) % p
    if op == "x^2+xy+y^2+x":
        return (x**2 + x * y + y**2 + x) % p
    if op == "x^3+xy":
        return (x**3 + x * y) % p
    if op == "x^3+xy^2+y":
        return (x**3 + x * y**2 + y) % p
    if op == "x/y if y odd else x-y" and y % 2 == 0:
        return (x - y) % p
    return None  # division: no closed form here on purpose


def test_every_power_operation_is_available():
    power = {"x+y", "x-y", "x/y", "x/y if y odd else x-y", "x^2+y^2", "x^2+xy+y^2", "x^2+xy+y^2+x", "x^3+xy", "x^3+xy^2+y"}
    assert power <= set(MODULAR_OPS)
    assert {"x*y", "x*y*x^-1", "x*y*x"} == set(PERMUTATION_OPS)


@pytest.mark.parametrize("op", list(MODULAR_OPS))
@pytest.mark.parametrize("p", [2, 7, 97])
def test_modular_tables_match_brute_force(op, p):
    x, y, z = full_table(TaskConfig(group="modular", op=op, p=p))
    ys = range(1, p) if op == "x/y" else range(p)
    assert sorted(zip(x.tolist(), y.tolist())) == [(a, b) for a in range(p) for b in ys]
    for a, b, c in zip(x.tolist(), y.tolist(), z.tolist()):
        assert 0 <= c < p
        expected = brute_modular(op, a, b, p)
        if expected is None:  # x/y: the answer times y gives x back
            assert b != 0 and (c * b) % p == a
        else:
            assert c == expected, (op, a, b, c, expected)


@pytest.mark.parametrize("op", ["x*y", "x+y", "x/y"])
def test_nonzero_y_leaves_out_y_zero_and_nothing_else(op):
    """task.nonzero_y (danielmamay/grokking's and ironjr/grokfast's tables): the rows with y = 0 go, the rest are
    the full table's, in the same order; the sizes the config promises are the table's."""
    full = full_table(TaskConfig(op=op, p=13))
    cfg = TaskConfig(op=op, p=13, nonzero_y=True, train_frac=0.5)
    x, y, z = full_table(cfg)
    keep = full[1] != 0
    assert all((a == b[keep]).all() for a, b in zip((x, y, z), full))
    assert len(x) == cfg.n_equations == 13 * 12 and cfg.n_train == 78


def test_nonzero_y_is_for_modular_tables_only():
    with pytest.raises(ConfigError, match=r"task.nonzero_y=True: only task.group='modular' has a y = 0 to leave out; use False"):
        TaskConfig(group="permutation", op="x*y", nonzero_y=True)


def test_division_is_not_integer_division():
    x, y, z = full_table(TaskConfig(op="x/y", p=97))
    table = {(a, b): c for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())}
    assert table[(1, 2)] == 49  # 2·49 = 98 ≡ 1, whereas 1 // 2 = 0
    assert table[(6, 3)] == 2


def _compose(a, b):
    return tuple(a[b[i]] for i in range(len(a)))


def _inverse(a):
    inv = [0] * len(a)
    for i, ai in enumerate(a):
        inv[ai] = i
    return tuple(inv)


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("op", ["x*y", "x*y*x^-1", "x*y*x"])
def test_permutation_tables_match_plain_permutations(n, op):
    perms = list(itertools.permutations(range(n)))
    assert [tuple(r) for r in permutations(n).tolist()] == perms
    x, y, z = full_table(TaskConfig(group="permutation", op=op, n=n))
    assert len(z) == len(perms) ** 2
    for a, b, c in zip(x.tolist(), y.tolist(), z.tolist()):
        pa, pb = perms[a], perms[b]
        if op == "x*y":
            want = _compose(pa, pb)
        elif op == "x*y*x^-1":
            want = _compose(_compose(pa, pb), _inverse(pa))
        else:
            want = _compose(_compose(pa, pb), pa)
        assert perms[c] == want


def test_s5_is_the_default_group_size():
    cfg = TaskConfig(group="permutation", op="x*y")
    assert cfg.n == 5 and cfg.n_elements == 120 and cfg.n_equations == 14400
    x, y, z = full_table(cfg)
    assert len(z) == 14400
    # a group table is a Latin square: each row holds every element once
    assert all(len(set(z[x == a].tolist())) == 120 for a in range(0, 120, 17))


@pytest.mark.parametrize("p", [96, 1, 0, 91])
def test_division_needs_a_prime(p):
    with pytest.raises(ConfigError, match="task.p"):
        TaskConfig(op="x/y", p=p)
    with pytest.raises(ConfigError, match="task.p"):
        TaskConfig(op="x/y if y odd else x-y", p=max(p, 4) if p > 1 else p)


def test_non_prime_p_allowed_without_division():
    assert TaskConfig(op="x+y", p=96).n_equations == 96 * 96


def test_unknown_operation_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"task.op='x\*\*y'.*'x\+y'"):
        TaskConfig(op="x**y")
    with pytest.raises(ConfigError, match="task.group"):
        TaskConfig(op="x*y*x", group="modular")  # S_n op asked of Z_p
