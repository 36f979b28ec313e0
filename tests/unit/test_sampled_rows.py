"""Sampling converts only the columns it needs; the sampled cells' full rows come from
their own lines of the cell table (issue 25), equal to what a read of every column gives."""

import numpy as np
import pyarrow.csv as pcsv
import pytest

from abc_downsample.demo.wmb import cells_table, cluster_taxonomy
from abc_downsample.metadata import tables as metadata

WANTED = ["cell_label", "cluster_alias", "feature_matrix_label"]


def cell_table(n: int, seed: int):
    """The demo's cell table: the 17 real columns (an empty one among them), in the bucket's
    mixed order."""
    rng = np.random.default_rng(seed)
    return cells_table(rng, cluster_taxonomy(rng, n))


@pytest.fixture
def table_csv(tmp_path):
    frame = cell_table(2000, seed=4)
    path = tmp_path / "cell_metadata.csv"
    frame.to_csv(path, index=False)
    return path


def rows_of_every_column(path, rows):
    return metadata.read_cell_table(path).take(rows)


def test_the_first_pass_converts_only_the_asked_columns(table_csv, monkeypatch):
    converted = []
    real_open = pcsv.open_csv

    def recording_open(path, *args, convert_options=None, **kwargs):
        converted.append(list(convert_options.include_columns) if convert_options else [])
        return real_open(path, *args, convert_options=convert_options, **kwargs)

    monkeypatch.setattr(metadata.pcsv, "open_csv", recording_open)
    once = metadata.read_cell_table_once(table_csv, WANTED, "cell_label")
    reads = [columns for columns in converted if columns]  # [] = every column (or a header)
    assert reads and all(sorted(columns) == sorted(WANTED) for columns in reads)
    assert once.kept.column_names == WANTED


@pytest.mark.parametrize("scan_block", [37, 1000, 1 << 20])
def test_taken_rows_equal_a_read_of_every_column_across_blocks(table_csv, monkeypatch,
                                                               scan_block):  # fmt: skip
    """Blocks shorter than a line, lines cut at block ends, the first and last rows."""
    monkeypatch.setattr(metadata, "SCAN_BLOCK", scan_block)
    rows = np.r_[0, 1, np.sort(np.random.default_rng(1).choice(np.arange(2, 1999), 300, False)),
                 1999]  # fmt: skip
    once = metadata.read_cell_table_once(table_csv, WANTED, "cell_label")
    taken = once.take(rows)
    expected = rows_of_every_column(table_csv, rows)
    assert taken.schema == expected.schema
    assert taken.to_pylist() == expected.to_pylist()


@pytest.mark.parametrize("layout", ["crlf", "no final line break", "blank lines"])
def test_taken_rows_whatever_the_line_breaks(tmp_path, monkeypatch, layout):
    """Windows line breaks and a last line without one are read from the lines; blank lines
    (which the CSV reader skips, so lines are not rows) fall back to a second pass."""
    monkeypatch.setattr(metadata, "SCAN_BLOCK", 512)
    text = cell_table(300, seed=2).to_csv(index=False)
    if layout == "crlf":
        text = text.replace("\n", "\r\n")
    elif layout == "no final line break":
        text = text.rstrip("\n")
    else:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[:50] + ["\n", "\n"] + lines[50:])
    path = tmp_path / "cells.csv"
    path.write_bytes(text.encode())
    rows = np.array([0, 49, 50, 51, 150, 299])
    taken = metadata.read_cell_table_once(path, WANTED, "cell_label").take(rows)
    assert taken.to_pylist() == rows_of_every_column(path, rows).to_pylist()


@pytest.mark.parametrize("labels_only", [False, True])
def test_blank_lines_take_the_second_pass(tmp_path, monkeypatch, labels_only):
    """(``labels_only``: sampling drops its other columns before taking the rows.)"""
    text = cell_table(100, seed=3).to_csv(index=False).replace("\n", "\n\n", 3)
    path = tmp_path / "cells.csv"
    path.write_text(text)
    second = []
    real = metadata.SampledTable._second_pass
    monkeypatch.setattr(metadata.SampledTable, "_second_pass",
                        lambda self, rows: second.append(1) or real(self, rows))  # fmt: skip
    rows = np.array([3, 60])
    once = metadata.read_cell_table_once(path, WANTED, "cell_label")
    if labels_only:
        once.keep_only_labels()
    taken = once.take(rows)
    assert second, "lines that are not rows are noticed"
    assert taken.to_pylist() == rows_of_every_column(path, rows).to_pylist()


def test_plain_lines_need_no_second_pass(table_csv, monkeypatch):
    monkeypatch.setattr(metadata.SampledTable, "_second_pass", None)  # would fail if called
    taken = metadata.read_cell_table_once(table_csv, WANTED, "cell_label").take(np.arange(5))
    assert taken.num_rows == 5
