"""The subset h5ad written with h5py alone is the file anndata writes, and the download-mode
subset job runs without pandas, anndata, pyarrow or scipy (their imports cost each of the 24
jobs over a second)."""

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import PROJECT, local_abc, receipts_for

from abc_downsample.cache.layout import read_receipt
from abc_downsample.cache.verify import write_stamp
from abc_downsample.errors import AbcError
from abc_downsample.subset.local import labels_for_matrix, subset_local_file

SCRIPTS = PROJECT / "scripts"
MATRIX = "WMB-10Xv3-TH"
N_CELLS, N_GENES = 400, 30


def source_tables(nullable=False):
    """obs/var with every encoding the ABC files use, and the cases anndata rewrites."""
    rng = np.random.default_rng(5)
    n = N_CELLS
    obs = pd.DataFrame(
        {
            # strings with repeats, stored as strings: anndata makes them a categorical
            # with naturally sorted categories ("L2" before "L10")
            "library_label": rng.choice(["L10", "L9", "L1", "l2", "Ä3"], n),
            "cell_barcode": [f"AAC{i:05d}" for i in range(n)],  # unique: stays strings
            "n_genes": rng.integers(0, 9000, n).astype(np.int32),
            "fraction": rng.random(n),
            "kept": rng.random(n) < 0.5,
            "region": pd.Categorical(
                rng.choice(["MB", "TH"], n), categories=["TH", "MB", "unused"], ordered=True
            ),
            "many": pd.Categorical(rng.choice([f"c{i}" for i in range(300)], n)),  # int16 codes
        },
        index=pd.Index([f"{i:04d}-cell" for i in range(n)], name="cell_label"),
    )
    if nullable:  # an encoding h5ad_tables leaves to anndata
        obs["score"] = pd.array(rng.integers(0, 5, n), dtype="Int64")
        obs.loc[obs.index[::7], "score"] = pd.NA
    var = pd.DataFrame(
        {"gene_symbol": [f"Sym{j % 20}" for j in range(N_GENES)], "length": np.arange(N_GENES)},
        index=pd.Index([f"ENSMUSG{j:011d}" for j in range(N_GENES)]),  # unnamed index
    )
    return obs, var


def write_source(path, nullable=False):
    obs, var = source_tables(nullable)
    x = sp.random(N_CELLS, N_GENES, density=0.2, format="csr", dtype=np.float32, random_state=1)
    # as stored, strings with repeats stay strings (a file not written by anndata's default)
    ad.AnnData(x, obs=obs, var=var).write_h5ad(path, convert_strings_to_categoricals=False)


def write_cells(path, labels):
    rows = [(label, 7, MATRIX) for label in labels] + [("other-1", 3, "WMB-10Xv2-TH")]
    pd.DataFrame(rows, columns=["cell_label", "cluster_alias", "feature_matrix_label"]).to_csv(
        path, index=False
    )


def anndata_subset(source, labels, path):
    """The subset as the job wrote it before h5ad_tables: the rows of the pandas tables
    (all categories kept, unlike an AnnData view), written by anndata."""
    whole = ad.read_h5ad(source)
    rows = whole.obs.index.get_indexer(labels)
    obs, var = whole.obs.iloc[rows], whole.var.copy()
    obs.index, var.index = obs.index.rename("cell_label"), var.index.rename("gene_identifier")
    uns = {"source_file": Path(source).name, "matrix": MATRIX}
    ad.AnnData(whole.X[rows], obs=obs, var=var, uns=uns).write_h5ad(path)


def nodes(path):
    """Every group and dataset: attributes, dtype, values."""
    out = {}

    def visit(name, node):
        attrs = {k: np.asarray(v).tolist() for k, v in node.attrs.items()}
        if isinstance(node, h5py.Dataset):
            out[name] = (attrs, str(node.dtype), h5py.check_string_dtype(node.dtype),
                         np.asarray(node[()]).tolist())  # fmt: skip
        else:
            out[name] = (attrs,)

    with h5py.File(path) as h5file:
        out["/"] = ({k: np.asarray(v).tolist() for k, v in h5file.attrs.items()},)
        h5file.visititems(visit)
    return out


@pytest.mark.parametrize("n_picked", [150, 12, 0])  # whole columns read, point reads, none
def test_subset_file_is_the_file_anndata_writes(tmp_path, n_picked):
    source = tmp_path / f"{MATRIX}-raw.h5ad"
    write_source(source)
    picked = [f"{i:04d}-cell" for i in np.random.default_rng(2).permutation(N_CELLS)[:n_picked]]
    write_cells(tmp_path / "cells.csv", picked)
    subset_local_file(source, tmp_path / "cells.csv", tmp_path / "ours.h5ad", MATRIX)
    anndata_subset(source, picked, tmp_path / "anndata.h5ad")

    ours, theirs = nodes(tmp_path / "ours.h5ad"), nodes(tmp_path / "anndata.h5ad")
    assert ours.keys() == theirs.keys()
    for name in theirs:
        assert ours[name] == theirs[name], name
    got, want = ad.read_h5ad(tmp_path / "ours.h5ad"), ad.read_h5ad(tmp_path / "anndata.h5ad")
    pd.testing.assert_frame_equal(got.obs, want.obs)
    pd.testing.assert_frame_equal(got.var, want.var)
    if n_picked == 150:  # repeated strings became a categorical, naturally sorted
        categories = list(got.obs["library_label"].cat.categories)
        assert categories.index("L9") < categories.index("L10")
    assert (got.X != want.X).nnz == 0 and got.uns == want.uns


def test_an_encoding_left_to_anndata_gives_the_same_subset(tmp_path):
    source = tmp_path / f"{MATRIX}-raw.h5ad"
    write_source(source, nullable=True)
    picked = [f"{i:04d}-cell" for i in range(0, N_CELLS, 9)]
    write_cells(tmp_path / "cells.csv", picked)
    subset_local_file(source, tmp_path / "cells.csv", tmp_path / "ours.h5ad", MATRIX)
    anndata_subset(source, picked, tmp_path / "anndata.h5ad")
    got, want = ad.read_h5ad(tmp_path / "ours.h5ad"), ad.read_h5ad(tmp_path / "anndata.h5ad")
    assert got.obs["score"].dtype == "Int64" and got.obs["score"].isna().any()
    pd.testing.assert_frame_equal(got.obs, want.obs)
    pd.testing.assert_frame_equal(got.var, want.var)


JOB = """
import json, sys
sys.path.insert(0, {scripts!r})
from abc_downsample.cache.layout import read_receipt
from abc_downsample.subset.job import subset_matrix_file
abc = json.loads({abc!r})
stats = subset_matrix_file(abc, read_receipt({receipt!r}), {cells!r}, {out!r}, {matrix!r}, True)
heavy = ["pandas", "anndata", "pyarrow", "scipy", "natsort", "zarr", "urllib3"]
print(json.dumps([stats.rows, [name for name in heavy if name in sys.modules]]))
"""


def test_subset_job_on_a_cached_file_imports_no_pandas_anndata_pyarrow_scipy_urllib3(tmp_path):
    source = tmp_path / f"{MATRIX}-raw.h5ad"
    ad.AnnData(
        sp.random(50, 8, density=0.3, format="csr", dtype=np.float32, random_state=2),
        obs=pd.DataFrame(
            {"library_label": pd.Categorical(["L1", "L2"] * 25), "cell_barcode": "x"},
            index=pd.Index([f"c{i}" for i in range(50)], name="cell_label"),
        ),
        var=pd.DataFrame({"gene_symbol": list("abcdefgh")}, index=list("ABCDEFGH")),
    ).write_h5ad(source)
    receipt = receipts_for(tmp_path, source.name)[source.name]
    write_stamp(tmp_path, read_receipt(receipt))  # the cache filled: verified by a download job
    write_cells(tmp_path / "cells.csv", ["c3", "c1", "c40"])
    code = JOB.format(
        scripts=str(SCRIPTS), abc=json.dumps({**local_abc(tmp_path), "keep_matrices": True}),
        receipt=str(receipt), cells=str(tmp_path / "cells.csv"),
        out=str(tmp_path / "out.h5ad"), matrix=MATRIX,
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    rows, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert rows == 3
    assert heavy == []
    assert list(ad.read_h5ad(tmp_path / "out.h5ad").obs.index) == ["c3", "c1", "c40"]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_cell_labels_read_alike_with_and_without_quoted_fields(tmp_path, line_end):
    table = pd.DataFrame(
        {
            "cell_label": ["a", "b,1", 'c"2', "d", "e"],
            "feature_matrix_label": [MATRIX, MATRIX, MATRIX, "WMB-10Xv2-TH", MATRIX],
            "note": [f"{MATRIX} too", "", "x", MATRIX, "y"],  # the name in another field
        }
    )
    table.to_csv(tmp_path / "quoted.csv", index=False, lineterminator=line_end)
    table.iloc[[0, 3, 4]].to_csv(tmp_path / "plain.csv", index=False, lineterminator=line_end)
    assert labels_for_matrix(tmp_path / "quoted.csv", MATRIX) == ["a", "b,1", 'c"2', "e"]
    assert labels_for_matrix(tmp_path / "plain.csv", MATRIX) == ["a", "e"]
    (tmp_path / "short.csv").write_text(f"cell_label,feature_matrix_label\na,{MATRIX}\nb\n")
    assert labels_for_matrix(tmp_path / "short.csv", MATRIX) == ["a"]
    (tmp_path / "cut.csv").write_text(f"feature_matrix_label,cell_label\n{MATRIX}\n")
    with pytest.raises(AbcError, match="fewer fields than its header"):
        labels_for_matrix(tmp_path / "cut.csv", MATRIX)
