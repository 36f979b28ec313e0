"""Per-cell tables joined on the cell label: each cell's row (the first where a label is
listed twice), none where absent, whatever the hashes say (labels of one hash are told
apart by their text)."""

import numpy as np
import pyarrow as pa

from abc_downsample.sampling import side_tables
from abc_downsample.sampling.side_tables import positions


def expected(cells, side) -> list:
    first = {}
    for i, label in enumerate(side):
        first.setdefault(label, i)
    return [first.get(label) for label in cells]


def test_each_cell_finds_its_first_row_or_none():
    rng = np.random.default_rng(1)
    side = [f"{b}-{i % 97}_A{i % 12}" for i, b in enumerate(rng.integers(0, 10**6, 3000))]
    side += side[:40]  # a label listed twice: its first row counts
    cells = list(rng.permutation(side[:2000] + [f"absent-{i}" for i in range(500)]))
    got = positions(pa.chunked_array([cells[:1000], cells[1000:]]), pa.array(side))
    assert got.to_pylist() == expected(cells, side)


def test_labels_of_one_hash_are_told_apart_by_their_text(monkeypatch):
    """Every label hashed alike: the text decides."""
    monkeypatch.setattr(side_tables, "hash_labels", lambda labels: np.zeros(len(labels), np.uint64))
    side, cells = ["a", "b", "c"], ["c", "zz", "a"]
    assert positions(pa.array(cells), pa.array(side)).to_pylist() == [2, None, 0]


def test_no_side_rows_means_no_cell_has_one():
    assert positions(pa.array(["a"]), pa.array([], pa.string())).to_pylist() == [None]
