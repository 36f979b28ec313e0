"""Reading selected CSR rows from real h5py files: planning, batching, order, dtypes."""

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from abc_downsample.errors import AbcError
from abc_downsample.h5ad.csr import H5CsrSource, batches, read_rows, row_runs
from abc_downsample.h5ad.tables import read_obs, read_obs_index, read_var
from abc_downsample.h5ad.writer import csr_h5ad_writer

LAYOUTS = ["contiguous", "chunked-gzip", "anndata"]


def random_csr(n_rows, n_cols, dtype, seed, empty_every=4):
    """A CSR matrix with some empty rows and unsorted column order inside rows."""
    rng = np.random.default_rng(seed)
    matrix = sp.random(n_rows, n_cols, density=0.3, format="csr", random_state=rng)
    matrix.data = (rng.integers(1, 1000, matrix.nnz) / 7).astype(dtype)
    matrix = matrix.astype(dtype)
    lil = matrix.tolil()
    for row in range(0, n_rows, empty_every):
        lil.rows[row], lil.data[row] = [], []
    return lil.tocsr().astype(dtype)


def write_h5ad(path, matrix, layout, obs_labels=None):
    """An h5ad with obs/var by anndata and X stored with the given HDF5 layout."""
    n_rows, n_cols = matrix.shape
    labels = obs_labels if obs_labels is not None else [f"cell-{i}" for i in range(n_rows)]
    obs = pd.DataFrame(
        {"cell_barcode": [f"bc{i % 5}" for i in range(n_rows)], "library_label": "L1"},
        index=pd.Index(labels, name="cell_label"),
    )
    var = pd.DataFrame(
        {"gene_symbol": [f"Sym{j}" for j in range(n_cols)]},
        index=pd.Index([f"ENSMUSG{j:011d}" for j in range(n_cols)], name="gene_identifier"),
    )
    if layout == "anndata":
        ad.AnnData(X=matrix, obs=obs, var=var).write_h5ad(path)
        return
    ad.AnnData(obs=obs, var=var).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        group = f.create_group("X")
        group.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        group.attrs["shape"] = np.array(matrix.shape)
        for name in ("data", "indices", "indptr"):
            array = getattr(matrix, name)
            options = {}
            if layout == "chunked-gzip":  # small chunks: a row spans several of them
                options = {"chunks": (max(1, min(37, len(array))),), "compression": "gzip"}
            group.create_dataset(name, data=array, **options)


def assert_same_csr(got, expected):
    assert got.shape == expected.shape
    assert got.data.dtype == expected.data.dtype
    np.testing.assert_array_equal(got.data, expected.data)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_array_equal(got.indptr, expected.indptr)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint16, np.float64])
def test_read_rows_bit_identical_to_anndata(tmp_path, layout, dtype):
    path = tmp_path / "m.h5ad"
    write_h5ad(path, random_csr(120, 40, dtype, seed=1), layout)
    rows = np.random.default_rng(2).permutation(120)[:45]
    expected = ad.read_h5ad(path)[rows].X
    with h5py.File(path) as f:
        got = read_rows(H5CsrSource(f["X"]), rows)
    assert_same_csr(got, expected)


@pytest.mark.parametrize("layout", ["contiguous", "chunked-gzip"])
@pytest.mark.parametrize("max_nnz", [1, 5, 17, 10_000])
def test_tiny_batches_give_the_same_rows(tmp_path, layout, max_nnz):
    path = tmp_path / "m.h5ad"
    matrix = random_csr(60, 30, np.float32, seed=3)
    write_h5ad(path, matrix, layout)
    rows = np.r_[np.arange(10, 25), [59, 0, 3, 2, 1], np.arange(40, 30, -1)]
    with h5py.File(path) as f:
        got = read_rows(H5CsrSource(f["X"]), rows, max_nnz=max_nnz)
    assert_same_csr(got, matrix[rows])


def test_order_is_honoured(tmp_path):
    path = tmp_path / "m.h5ad"
    matrix = random_csr(30, 20, np.float32, seed=4, empty_every=1000)
    write_h5ad(path, matrix, "contiguous")
    rows = np.array([7, 3, 29, 0])
    with h5py.File(path) as f:
        got = read_rows(H5CsrSource(f["X"]), rows)
    for out_row, in_row in enumerate(rows):
        np.testing.assert_array_equal(got[out_row].toarray(), matrix[in_row].toarray())


def test_no_rows_and_only_empty_rows(tmp_path):
    path = tmp_path / "m.h5ad"
    matrix = random_csr(12, 5, np.float32, seed=5, empty_every=2)
    write_h5ad(path, matrix, "chunked-gzip")
    with h5py.File(path) as f:
        source = H5CsrSource(f["X"])
        assert read_rows(source, np.array([], np.int64)).shape == (0, 5)
        empty = read_rows(source, np.array([4, 0, 2]))
    assert empty.shape == (3, 5) and empty.nnz == 0


def test_bad_row_numbers_are_refused(tmp_path):
    path = tmp_path / "m.h5ad"
    write_h5ad(path, random_csr(10, 5, np.float32, seed=6), "contiguous")
    with h5py.File(path) as f:
        source = H5CsrSource(f["X"])
        with pytest.raises(IndexError):
            read_rows(source, np.array([10]))
        with pytest.raises(ValueError, match="unique"):
            read_rows(source, np.array([1, 1]))


def test_source_counts_only_the_selected_bytes(tmp_path):
    path = tmp_path / "m.h5ad"
    matrix = random_csr(50, 20, np.float32, seed=7)
    write_h5ad(path, matrix, "contiguous")
    rows = np.array([1, 2, 3, 30])
    with h5py.File(path) as f:
        source = H5CsrSource(f["X"])
        read_rows(source, rows)
    assert source.bytes_read == matrix[rows].nnz * 8


def test_dense_x_is_a_one_line_error(tmp_path):
    path = tmp_path / "dense.h5ad"
    ad.AnnData(X=np.ones((3, 2), np.float32)).write_h5ad(path)
    with h5py.File(path) as f, pytest.raises(AbcError, match="not a CSR matrix"):
        H5CsrSource(f["X"])


def test_obs_and_var_are_read_without_x(tmp_path):
    path = tmp_path / "m.h5ad"
    write_h5ad(path, random_csr(8, 3, np.float32, seed=8), "contiguous")
    with h5py.File(path, "r+") as f:
        del f["X"]  # proves X is not needed
        obs, var, index = read_obs(f), read_var(f), read_obs_index(f)
    assert list(obs.index) == [f"cell-{i}" for i in range(8)]
    assert obs.index.name == "cell_label" and list(obs.columns) == ["cell_barcode", "library_label"]
    assert var.index.name == "gene_identifier" and var["gene_symbol"].iloc[2] == "Sym2"
    assert index.equals(obs.index)


def test_row_runs_merges_adjacent_rows():
    assert row_runs(np.array([0, 1, 2, 5, 7, 8])) == [(0, 3), (5, 6), (7, 9)]
    assert row_runs(np.array([], np.int64)) == []


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=40),
    picks=st.data(),
    max_nnz=st.integers(1, 25),
)
def test_batches_cover_runs_in_order_and_bound_nnz(lengths, picks, max_nnz):
    indptr = np.r_[0, np.cumsum(lengths)]
    n = len(lengths)
    rows = sorted(picks.draw(st.sets(st.integers(0, n - 1))))
    groups = batches(row_runs(np.array(rows, np.int64)), indptr, max_nnz)
    covered = [r for group in groups for a, b in group for r in range(a, b)]
    assert covered == rows
    for group in groups:
        nnz = sum(int(indptr[b] - indptr[a]) for a, b in group)
        n_rows = sum(b - a for a, b in group)
        assert nnz <= max_nnz or n_rows == 1


def test_writer_round_trips_through_anndata(tmp_path):
    matrix = random_csr(9, 4, np.int32, seed=9)
    obs = pd.DataFrame(index=pd.Index([f"c{i}" for i in range(9)], name="cell_label"))
    var = pd.DataFrame(index=pd.Index(list("abcd"), name="gene_identifier"))
    path = tmp_path / "w.h5ad"
    with csr_h5ad_writer(path, obs, var, {"k": "v"}, matrix.nnz, np.int32, np.int32) as w:
        w.append(matrix[:4].data, matrix[:4].indices, matrix[:4].indptr)
        w.append(matrix[4:].data, matrix[4:].indices, matrix[4:].indptr)
    back = ad.read_h5ad(path)
    assert_same_csr(back.X, matrix)
    assert back.uns["k"] == "v" and back.obs.index.equals(obs.index)
    # one index dtype: scanpy's PCA (sklearn) refuses int32 indices with an int64 indptr
    assert back.X.indices.dtype == back.X.indptr.dtype == np.int32


def test_writer_refuses_an_incomplete_matrix(tmp_path):
    obs = pd.DataFrame(index=pd.Index(["a", "b"], name="cell_label"))
    var = pd.DataFrame(index=pd.Index(["g"], name="gene_identifier"))
    with (
        pytest.raises(RuntimeError, match="expected 2"),
        csr_h5ad_writer(tmp_path / "w.h5ad", obs, var, {}, 1, np.float32, np.int32) as w,
    ):
        w.append(np.ones(1, np.float32), np.zeros(1, np.int32), np.array([0, 1]))


def test_inconsistent_x_is_a_one_line_error(tmp_path):
    path = tmp_path / "m.h5ad"
    write_h5ad(path, random_csr(10, 5, np.float32, seed=10), "contiguous")
    with h5py.File(path, "r+") as f:
        f["X"].attrs["shape"] = np.array([12, 5])
    with h5py.File(path) as f, pytest.raises(AbcError, match="inconsistent.*delete it and rerun"):
        H5CsrSource(f["X"])
