"""One home per helper (issue 14.3): the missing-extra error, the atomic writer every file goes through, the
JSON sanitiser and the dict flattener, each tested once here."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest
import torch

from groklab.errors import AnalysisError, GroklabError, MissingExtraError, require
from groklab.store import atomic_write, flatten_dict, json_safe, write_parquet


def test_require_names_the_extra_in_one_line():
    assert require("json", "x", "anything") is json
    with pytest.raises(MissingExtraError, match=r'pip install "groklab\[tl\]"') as e:
        require("no_such_package_groklab.sub", "tl", "the export")
    assert "\n" not in str(e.value) and "the export needs the optional package 'no_such_package_groklab'" in str(e.value)
    assert isinstance(e.value, ImportError) and isinstance(e.value, GroklabError)
    with pytest.raises(AnalysisError, match="or use something else"):
        require("no_such_package_groklab", "llc", "the LLC", error=AnalysisError, hint="or use something else")


def test_old_import_paths_still_work():
    from groklab.analysis.fourier import AnalysisError as A
    from groklab.interop import MissingExtraError as M, require as r

    assert A is AnalysisError and M is MissingExtraError and r is require


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "t.bin"
    target.write_text("old")

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]


def test_write_parquet_is_atomic_with_the_umask_mode(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    old = os.umask(0o027)
    try:
        path = write_parquet(pd.DataFrame({"a": [1, 2]}), tmp_path / "m.parquet")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and list(pd.read_parquet(path)["a"]) == [1, 2]

    class Broken(pd.DataFrame):
        def to_parquet(self, *a, **k):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_parquet(Broken({"a": [1]}), tmp_path / "m.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.parquet"]  # the old file, no temporary left


def test_json_safe():
    x = {"t": torch.tensor([1.5, float("nan")]), 3: np.float64("inf"), "s": torch.tensor(2), "p": tmp_path_like(), "l": (1, None)}
    assert json.loads(json.dumps(json_safe(x))) == {"t": [1.5, None], "3": None, "s": 2, "p": "P", "l": [1, None]}
    assert json_safe(math.nan) is None


def tmp_path_like():
    class P:
        def __str__(self):
            return "P"

    return P()


def test_flatten_dict():
    d = {"a": {"b": 1, "c": {}}, "d": 2}
    assert flatten_dict(d) == {"a.b": 1, "d": 2}
    assert flatten_dict(d, keep_empty=True) == {"a.b": 1, "a.c": {}, "d": 2}


def test_save_figure_writes_through_the_atomic_writer(tmp_path):
    import matplotlib.pyplot as plt

    from groklab.report.plots import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
    fig, ax = plt.subplots()
    with pytest.raises(ValueError):
        save_figure(fig, tmp_path / "g.nosuchformat")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # nothing left behind
