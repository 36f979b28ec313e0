"""The R export: a 10x HDF5 and CSVs, checked against the h5ad with h5py and pandas."""

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from test_concat import concat_files, release  # noqa: F401 (a fixture)
from test_scanpy_ready import write_colors

from abc_downsample.errors import AbcError
from abc_downsample.export.r_export import export_for_r, write_10x_h5
from abc_downsample.rule_io import setup_logging


@pytest.fixture
def result(release):  # noqa: F811
    """A result of raw counts (the fixture's values, rounded up to whole counts)."""
    path = release["dir"] / "final.h5ad"
    concat_files(release, path, colors=write_colors(release["dir"] / "colors.csv"))
    with h5py.File(path, "r+") as h5file:
        h5file["X/data"][...] = np.ceil(h5file["X/data"][...])
    return path


def outputs(directory):
    return {name: directory / f"r/{name}.{ext}" for name, ext in
            [("h5", "h5"), ("cells", "csv"), ("umap", "csv"), ("colors", "csv"),
             ("levels", "csv")]}  # fmt: skip


@pytest.mark.parametrize(("block_nnz", "gzip_level"), [(3, None), (1 << 20, None), (5, 1)])
def test_10x_h5_holds_the_counts_genes_by_cells(result, tmp_path, block_nnz, gzip_level):
    expected = ad.read_h5ad(result)
    nnz = write_10x_h5(result, tmp_path / "matrix.h5", block_nnz=block_nnz, gzip_level=gzip_level)
    with h5py.File(tmp_path / "matrix.h5", "r") as h5file:
        m = h5file["matrix"]
        shape = tuple(m["shape"][:])
        counts = sp.csc_matrix((m["data"][:], m["indices"][:], m["indptr"][:]), shape=shape)
        barcodes = m["barcodes"][:].astype(str)
        features = {k: m["features"][k][:].astype(str) for k in ("id", "name", "feature_type")}
    assert shape == (expected.n_vars, expected.n_obs) and nnz == expected.X.nnz
    assert (counts.T.tocsr() != expected.X).nnz == 0
    assert list(barcodes) == list(expected.obs_names)
    assert list(features["id"]) == list(expected.var_names)
    assert list(features["name"]) == list(expected.var["gene_symbol"])
    assert set(features["feature_type"]) == {"Gene Expression"}


@pytest.mark.parametrize("gzip_level", [None, 1])
def test_10x_h5_is_what_cell_ranger_writes(result, tmp_path, gzip_level):
    """Cell Ranger's dtypes (int32 counts of raw data, int64 indices and indptr, int32
    shape), its root attributes, and gzip chunks when asked (issue 22, finding 7)."""
    write_10x_h5(result, tmp_path / "matrix.h5", gzip_level=gzip_level)
    with h5py.File(tmp_path / "matrix.h5", "r") as h5file:
        m = h5file["matrix"]
        dtypes = {name: m[name].dtype for name in ("data", "indices", "indptr", "shape")}
        attrs = dict(h5file.attrs)
        compression = {m[name].compression for name in ("data", "indices")}
    assert dtypes == {"data": np.int32, "indices": np.int64, "indptr": np.int64,
                      "shape": np.int32}  # fmt: skip
    assert {"filetype", "version", "software_version", "chemistry_description", "library_ids",
            "original_gem_groups"} <= set(attrs)  # fmt: skip
    assert attrs["filetype"] == "matrix" and attrs["version"] == 2
    assert list(attrs["original_gem_groups"]) == [1] and len(attrs["library_ids"]) == 1
    assert compression == {"gzip" if gzip_level else None}


def test_10x_h5_of_log2_values_keeps_them_and_raw_values_must_be_counts(result, tmp_path):
    with h5py.File(result, "r+") as h5file:
        h5file["uns/abc_downsample/variant"][()] = "log2"
        h5file["X/data"][0] = 0.5
    write_10x_h5(result, tmp_path / "matrix.h5")
    with h5py.File(tmp_path / "matrix.h5", "r") as h5file:
        assert h5file["matrix/data"].dtype == np.float32
        assert 0.5 in h5file["matrix/data"][:]
    with h5py.File(result, "r+") as h5file:
        h5file["uns/abc_downsample/variant"][()] = "raw"
    with pytest.raises(AbcError, match="not whole int32 counts"):
        write_10x_h5(result, tmp_path / "again.h5")
    assert not (tmp_path / "again.h5").exists()


def test_10x_h5_reads_back_in_scanpy(result, tmp_path):
    sc = pytest.importorskip("scanpy")
    expected = ad.read_h5ad(result)
    write_10x_h5(result, tmp_path / "matrix.h5")
    read = sc.read_10x_h5(tmp_path / "matrix.h5", gex_only=False)
    assert (read.X != expected.X).nnz == 0
    assert list(read.var["gene_ids"]) == list(expected.var_names)


def test_cell_tables_keep_terms_missing_values_umap_and_colours(result, tmp_path):
    expected = ad.read_h5ad(result)
    out = outputs(tmp_path)
    export_for_r(result, **out)
    cells = pd.read_csv(out["cells"], index_col="cell_label", keep_default_na=False, dtype=str)
    assert list(cells.index) == list(expected.obs_names)
    assert list(cells.columns) == list(expected.obs.columns)
    for column in ("neurotransmitter", "class", "cluster_alias", "library_label"):
        assert list(cells[column]) == list(expected.obs[column].astype(str)), column
    assert "NA" in set(cells["neurotransmitter"])  # the term, not a missing value
    umap = pd.read_csv(out["umap"], index_col="cell_label", float_precision="round_trip")
    assert list(umap.columns) == ["UMAP_1", "UMAP_2"]
    np.testing.assert_array_equal(umap.to_numpy(), expected.obsm["X_umap"])
    colors = pd.read_csv(out["colors"], keep_default_na=False, dtype=str)
    for level in ("class", "neurotransmitter"):
        rows = colors[colors["column"] == level]
        assert list(rows["term"]) == list(expected.obs[level].cat.categories)
        assert list(rows["color"]) == list(expected.uns[f"{level}_colors"])
    # every categorical column's levels in order (R's factors); text and numbers not
    levels = pd.read_csv(out["levels"], keep_default_na=False, dtype=str)
    categorical = [c for c in expected.obs.columns
                   if isinstance(expected.obs[c].dtype, pd.CategoricalDtype)]  # fmt: skip
    assert list(dict.fromkeys(levels["column"])) == categorical and "x" not in categorical
    for column in categorical:
        rows = levels.loc[levels["column"] == column, "level"]
        assert list(rows) == list(expected.obs[column].cat.categories.astype(str)), column


def test_a_matrix_too_big_for_r_warns_in_one_terminal_line(result, tmp_path, capfd, rule_logging):
    setup_logging(str(tmp_path / "export_r.log"))  # as the rule script does
    export_for_r(result, **outputs(tmp_path), nnz_limit=10)
    lines = [line for line in capfd.readouterr().err.splitlines() if "dgCMatrix" in line]
    assert len(lines) == 1 and lines[0].startswith("abc-downsample: warning: the result has")
    assert "delayed=TRUE" in lines[0] and "sampling.target_cells" in lines[0]
    export_for_r(result, **outputs(tmp_path))
    assert "dgCMatrix" not in capfd.readouterr().err


def test_a_result_without_umap_exports_an_empty_embedding(result, tmp_path):
    """Datasets whose cell table has no embedding (HMBA, ASAP) still export for R."""
    with h5py.File(result, "r+") as h5file:
        del h5file["obsm/X_umap"]
    out = outputs(tmp_path)
    export_for_r(result, **out, genome="GRCh38")
    umap = pd.read_csv(out["umap"], index_col=0)
    assert umap.shape == (len(pd.read_csv(out["cells"])), 0)
    with h5py.File(out["h5"], "r") as h5file:
        assert set(h5file["matrix/features/genome"][:]) == {b"GRCh38"}
