"""Streaming concatenation of subset files into the final h5ad, on real files."""

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import local_abc, receipts_for
from test_csr_rows import assert_same_csr, random_csr
from test_subset import run_rule

from abc_downsample.concat.build import concat_release, concat_subsets, subset_labels
from abc_downsample.dataset.profile import load_dataset
from abc_downsample.errors import AbcError
from abc_downsample.sampling.sample import sample_to_files

TAXONOMY_LEVELS = list(load_dataset().taxonomy.columns)

N_GENES = 12
MATRICES = {"WMB-10Xv2-TH": (15, np.float32), "WMB-10Xv3-MB": (0, np.float32),
            "WMB-10Xv3-TH": (22, np.float32)}  # fmt: skip
METADATA_COLUMNS = ["cell_label", "cell_barcode", "library_label", "feature_matrix_label",
                    "region_of_interest_acronym", "donor_sex", "dataset_label", "x", "y",
                    "cluster_alias"]  # fmt: skip
PROVENANCE = {"release": "20250531", "variant": "raw", "seed": 20230722, "target": 37,
              "directories": {"WMB-10X": "20241115"}, "strategy": "proportional"}  # fmt: skip


def genes_table():
    return pd.DataFrame({
        "gene_identifier": [f"ENSMUSG{j:011d}" for j in range(N_GENES)],
        "gene_symbol": [f"Sym{j}" for j in range(N_GENES)],
        "name": [f"gene number {j}" for j in range(N_GENES)],
        "mapped_ncbi_identifier": [f"NCBIGene:{j}" if j % 3 else "" for j in range(N_GENES)],
        "comment": ["" if j % 4 else "odd" for j in range(N_GENES)],
    })  # fmt: skip


def write_subset(path, labels, matrix, dtype, seed, genes=None):
    genes = genes_table() if genes is None else genes
    var = genes.set_index("gene_identifier")[["gene_symbol"]]
    obs = pd.DataFrame({"cell_barcode": "ACGT", "library_label": "L9"},
                       index=pd.Index(labels, name="cell_label"))  # fmt: skip
    x = random_csr(len(labels), N_GENES, dtype, seed=seed) if len(labels) else None
    subset = ad.AnnData(X=x, obs=obs, var=var, uns={"source_file": f"{matrix}-raw.h5ad",
                                                     "matrix": matrix})  # fmt: skip
    if x is None:
        subset.X = random_csr(1, N_GENES, dtype, seed=seed)[:0]
    subset.write_h5ad(path)


def sample_files(directory, given):
    """The sampling step on the release's cell table, taking the cells ``given``: its cell
    list and the sampled cells' rows of the cell table (returned), as the workflow makes
    them."""
    config = {"target_cells": 1, "min_cluster_size": 1, "seed": 1, "filters": {},
              "strategy": "proportional", "cluster_column": "cluster_alias",
              "cells_file": str(given)}  # fmt: skip
    out = directory / "sampled"
    rows = directory / ".abc" / "sample" / "cell_rows.arrow"
    sample_to_files(directory / "cell_metadata.csv", directory / "taxonomy.csv", config,
                    out / "cells.csv", out / "summary.csv", out / "levels.csv", rows,
                    rows.with_name("population.json"))  # fmt: skip
    return rows


@pytest.fixture
def release(tmp_path):
    """Subsets of three matrices (one empty), the sample, cell metadata, taxonomy, genes,
    and the sampled cells' rows of the cell metadata."""
    rng = np.random.default_rng(5)
    paths, sample, cells = [], [], []
    for i, (matrix, (n, dtype)) in enumerate(sorted(MATRICES.items())):
        labels = [f"{matrix[-2:]}{k:03d}-{matrix}" for k in range(n)]
        path = tmp_path / "subsets" / f"{matrix}.h5ad"
        path.parent.mkdir(exist_ok=True)
        write_subset(path, labels, matrix, dtype, seed=i)
        paths.append(str(path))
        sample += [(label, matrix) for label in labels]
    sample_table = pd.DataFrame(sample, columns=["cell_label", "feature_matrix_label"])
    sample_table.sample(frac=1, random_state=1).to_csv(tmp_path / "cells.csv", index=False)
    extra = [(f"unsampled-{k}", "WMB-10Xv3-TH") for k in range(9)]
    for label, matrix in sample + extra:
        cells.append((label, "ACGT", "L9", matrix, "TH" if "TH" in matrix else "MB",
                      rng.choice(["M", "F"]), matrix[:9], rng.random(), rng.random(),
                      int(rng.integers(1, 5))))  # fmt: skip
    metadata = pd.DataFrame(cells, columns=METADATA_COLUMNS).sample(frac=1, random_state=2)
    metadata.to_csv(tmp_path / "cell_metadata.csv", index=False)
    pd.DataFrame({
        "cluster_alias": [1, 2, 3, 4],
        "neurotransmitter": ["Glut", "NA", "GABA", ""],
        "class": ["01 IT-ET Glut", "30 Astro-Epen", "06 CTX-CGE GABA", "34 Immune"],
        "subclass": ["s1", "s2", "s3", "s4"], "supertype": ["t1", "t2", "t3", "t4"],
        "cluster": ["c1", "c2", "c3", "c4"],
    }).to_csv(tmp_path / "taxonomy.csv", index=False)  # fmt: skip
    genes_table().to_csv(tmp_path / "gene.csv", index=False)
    (tmp_path / "out").mkdir()
    rows = sample_files(tmp_path, tmp_path / "cells.csv")
    return {"paths": paths, "dir": tmp_path, "metadata": metadata.set_index("cell_label"),
            "rows": rows}  # fmt: skip


def concat_files(release, out, **kwargs):
    d = release["dir"]
    return concat_release(release["paths"], out, cells_csv=d / "cells.csv",
                          sample_rows=release["rows"], taxonomy=d / "taxonomy.csv",
                          genes=d / "gene.csv", provenance=PROVENANCE, **kwargs)  # fmt: skip


@pytest.mark.filterwarnings("ignore::FutureWarning")  # inside anndata.concat
@pytest.mark.parametrize("block_nnz", [3, 1 << 20])
def test_final_file_matches_anndata_concat(release, block_nnz):
    out = release["dir"] / "out" / "downsampled_expression.h5ad"
    stats = concat_files(release, out, block_nnz=block_nnz)
    expected = ad.concat([ad.read_h5ad(p) for p in release["paths"]])
    got = ad.read_h5ad(out)
    assert_same_csr(got.X, expected.X)
    assert list(got.obs.index) == list(expected.obs.index) and got.obs.index.name == "cell_label"
    assert (stats.rows, stats.nnz, stats.files) == (37, expected.X.nnz, 3)


def test_obs_has_all_metadata_and_taxonomy_levels(release):
    out = release["dir"] / "final.h5ad"
    concat_files(release, out)
    obs = ad.read_h5ad(out).obs
    metadata = release["metadata"].loc[obs.index]
    assert list(obs.columns) == METADATA_COLUMNS[1:] + TAXONOMY_LEVELS
    for column in ["cell_barcode", "feature_matrix_label", "donor_sex", "dataset_label",
                   "cluster_alias"]:  # fmt: skip
        assert isinstance(obs[column].dtype, pd.CategoricalDtype), column
        assert list(obs[column].astype(str)) == list(metadata[column].astype(str))
    np.testing.assert_array_equal(obs["x"].to_numpy(), metadata["x"].to_numpy())
    terms = {1: "Glut", 2: "NA", 3: "GABA", 4: ""}
    expected_nt = [terms[a] for a in metadata["cluster_alias"]]
    assert list(obs["neurotransmitter"].astype(str)) == expected_nt
    assert "NA" in obs["neurotransmitter"].cat.categories  # the literal term, not missing
    classes = {1: "01 IT-ET Glut", 2: "30 Astro-Epen", 3: "06 CTX-CGE GABA", 4: "34 Immune"}
    assert list(obs["class"].astype(str)) == [classes[a] for a in metadata["cluster_alias"]]


def test_obs_columns_are_what_pandas_makes_of_the_cell_table(release):
    """Text as categoricals of its sorted distinct values (code point order; an empty field
    is missing, the text "NA" a value), numbers as numbers: as pandas would make them from
    the cell table, though concat never reads it."""
    d = release["dir"]
    table = pd.read_csv(d / "cell_metadata.csv")
    # the 9 unsampled cells come last in the file: "Z" only among them, never a category
    notes = np.array(["é", "b", "", "NA", "a", "B"], dtype=object)[np.arange(len(table)) % 6]
    table["note"] = np.where(table["cell_label"].str.startswith("unsampled"), "Z", notes)
    table["count"] = np.where(np.arange(len(table)) % 5 == 0, np.nan, np.arange(len(table)))
    table["abc_sample_id"] = [f"id-{i:05d}" for i in range(len(table))]
    table.to_csv(d / "cell_metadata.csv", index=False)
    rows = sample_files(d, d / "cells.csv")
    out = d / "final.h5ad"
    concat_files({**release, "rows": rows}, out)
    obs = ad.read_h5ad(out).obs
    expected = pd.read_csv(d / "cell_metadata.csv", keep_default_na=False, na_values=[""])
    expected = expected.set_index("cell_label").loc[obs.index]
    for column in ["note", "cell_barcode", "donor_sex", "library_label"]:
        want = expected[column].astype("category")
        pd.testing.assert_series_equal(obs[column], want, check_names=False)
    # one value per cell (an id, a barcode) names cells, it groups none: text, not a
    # category, in scanpy and R alike (issue 22, findings 6 and 7)
    want = expected["abc_sample_id"].astype(object)
    pd.testing.assert_series_equal(obs["abc_sample_id"], want, check_names=False)
    assert list(obs["note"].cat.categories) == ["B", "NA", "a", "b", "é"]
    assert obs["note"].isna().sum() == (expected["note"].isna()).sum() > 0
    pd.testing.assert_series_equal(obs["count"], expected["count"], check_names=False)
    assert list(obs["cluster_alias"].cat.categories) == ["1", "2", "3", "4"]


def test_stale_sample_rows_are_refused(release):
    d = release["dir"]
    fewer = d / "fewer.csv"
    pd.read_csv(d / "cells.csv").iloc[:-1].to_csv(fewer, index=False)
    rows = sample_files(d, fewer)
    with pytest.raises(AbcError, match=r"1 cell\(s\) of the subsets are not in .*stale; delete it"):
        concat_files({**release, "rows": rows}, d / "f.h5ad")
    assert not (d / "f.h5ad").exists()


def test_var_and_uns(release):
    out = release["dir"] / "final.h5ad"
    concat_files(release, out)
    final = ad.read_h5ad(out)
    genes = genes_table().set_index("gene_identifier")
    assert final.var.index.name == "gene_identifier"
    assert final.var.index.equals(genes.index)
    assert list(final.var.columns) == list(genes.columns)
    assert list(final.var["name"]) == list(genes["name"])
    assert list(final.var["gene_symbol"]) == list(genes["gene_symbol"])
    provenance = final.uns["abc_downsample"]
    assert provenance["release"] == "20250531" and provenance["seed"] == 20230722
    assert provenance["directories"] == {"WMB-10X": "20241115"}


def test_subsets_with_other_genes_are_refused(release):
    genes = genes_table()
    genes.loc[3, "gene_symbol"] = "Renamed"
    labels = ad.read_h5ad(release["paths"][0]).obs.index.tolist()
    write_subset(release["paths"][0], labels, "WMB-10Xv2-TH", np.float32, 9, genes)
    with pytest.raises(AbcError, match="has other genes .*rebuilding cannot fix"):
        concat_files(release, release["dir"] / "f.h5ad")
    assert not (release["dir"] / "f.h5ad").exists()


def test_stale_subsets_are_refused(release):
    pd.DataFrame({"cell_label": ["someone-else"], "feature_matrix_label": ["x"]}).to_csv(
        release["dir"] / "cells.csv", index=False
    )
    with pytest.raises(AbcError, match="they are stale"):
        concat_files(release, release["dir"] / "f.h5ad")
    assert not (release["dir"] / "f.h5ad").exists()


def test_a_cell_in_two_subsets_is_refused(release):
    first = ad.read_h5ad(release["paths"][0]).obs.index[:2].tolist()
    write_subset(release["paths"][2], first, "WMB-10Xv3-TH", np.float32, 3)
    with pytest.raises(AbcError, match="more than one subset"):
        subset_labels(release["paths"])


def test_obs_and_var_must_fit_the_subsets(release):
    obs = pd.DataFrame(index=pd.Index(["a"], name="cell_label"))
    var = ad.read_h5ad(release["paths"][0]).var
    with pytest.raises(AbcError, match="obs has 1"):
        concat_subsets(release["paths"], release["dir"] / "f.h5ad", obs, var, {})
    obs = pd.DataFrame(index=pd.Index([f"c{i}" for i in range(37)], name="cell_label"))
    with pytest.raises(AbcError, match="var has 11"):
        concat_subsets(release["paths"], release["dir"] / "f.h5ad", obs, var.iloc[1:], {})
    assert not (release["dir"] / "f.h5ad").exists()


CONCAT_RULE = """
config["abc"] = ABC
rule concat:
    input:
        subsets=[SUBSETS], cells="cells.csv", sample_rows=".abc/sample/cell_rows.arrow",
        population=".abc/sample/population.json",
        taxonomy="receipts/taxonomy.csv.json", genes="receipts/gene.csv.json",
        sample_done="done/sample.json"
    output: h5ad="data/downsampled_expression.h5ad", done="done/concat.abc.json"
    params: provenance={"release": "20250531", "variant": "raw"}, settings={}, dataset=DATASET
    log: "logs/concat.log"
    script: "SCRIPT"
"""


def test_rule_script_under_snakemake(release):
    """The rule's obs come from the sample's rows: the cell table is not even there. Its
    provenance says what the sample recorded: a given cell list (its MD5), and none of the
    draw's settings, which played no part (issue 22, finding 3)."""
    subsets = ", ".join(f'"subsets/{p.rsplit("/", 1)[1]}"' for p in release["paths"])
    receipts_for(release["dir"], "taxonomy.csv", "gene.csv")
    (release["dir"] / "cell_metadata.csv").unlink()
    marker = {"release": "20250531", "dataset": {"name": "WMB-10X"}, "target_cells": 1500,
              "seed": 7, "strategy": "proportional", "min_cluster_size": 50,
              "cluster_column": "cluster_alias", "filters": {}, "cells_file": "mine.csv",
              "cells_file_md5": "0123abcd"}  # fmt: skip
    (release["dir"] / "done").mkdir()
    (release["dir"] / "done" / "sample.json").write_text(json.dumps(marker))
    rule = CONCAT_RULE.replace("SUBSETS", subsets).replace("ABC", repr(local_abc(release["dir"])))
    rule = rule.replace("DATASET", repr(load_dataset().raw))
    result = run_rule(release["dir"], rule, "concat.py")
    assert result.returncode == 0, result.stderr[-2000:]
    final = ad.read_h5ad(release["dir"] / "data" / "downsampled_expression.h5ad")
    assert final.shape == (37, N_GENES)
    assert final.uns["abc_downsample"] == {
        "release": "20250531", "variant": "raw", "cluster_column": "cluster_alias",
        "filters": {}, "cells_file": "mine.csv", "cells_file_md5": "0123abcd",
        # what the cell table held, as sampling recorded it
        "population": {"cells": 46, "without_group": 0, "unassigned": "drop", "membership": ""},
    }  # fmt: skip
    expected = release["metadata"].loc[final.obs.index]
    assert list(final.obs["donor_sex"].astype(str)) == list(expected["donor_sex"])
    assert "37 cells" in (release["dir"] / "logs" / "concat.log").read_text()


# ---- gene panels (output.genes) ----------------------------------------------------------
@pytest.mark.filterwarnings("ignore::FutureWarning")  # inside anndata.concat
@pytest.mark.parametrize("block_nnz", [1, 3, 1 << 20])
def test_a_gene_panel_keeps_its_genes_in_matrix_order_and_every_cell(release, block_nnz,
                                                                     caplog):  # fmt: skip
    out = release["dir"] / "out" / f"panel_{block_nnz}.h5ad"
    names = ["Sym7", "ENSMUSG00000000002", "Nope1", "Sym0", "Nope2"]  # ids and symbols
    with caplog.at_level("WARNING"):
        stats = concat_files(release, out, block_nnz=block_nnz, gene_panel=names)
    whole = ad.concat([ad.read_h5ad(p) for p in release["paths"]])
    got = ad.read_h5ad(out)
    columns = [0, 2, 7]  # the matrices' order, not the list's
    assert list(got.var_names) == [f"ENSMUSG{j:011d}" for j in columns]
    assert list(got.var["gene_symbol"]) == [f"Sym{j}" for j in columns]
    assert list(got.obs_names) == list(whole.obs_names)
    assert_same_csr(got.X, whole.X[:, columns].tocsr())
    assert stats.nnz == whole.X[:, columns].nnz
    warnings = [r.getMessage() for r in caplog.records if "output.genes" in r.getMessage()]
    assert warnings == ["output.genes: 2 of its 5 names are no gene of the matrices "
                        "(gene_identifier or gene_symbol), e.g. 'Nope1', 'Nope2': left out"]


def test_a_gene_panel_from_a_file_and_a_panel_of_no_gene(release):
    panel = release["dir"] / "panel.txt"
    panel.write_text("gene\nSym3\nSym1\n\n")  # a header, then one name a line
    out = release["dir"] / "out" / "panel_file.h5ad"
    concat_files(release, out, gene_panel=str(panel))
    assert list(ad.read_h5ad(out).var["gene_symbol"]) == ["Sym1", "Sym3"]
    # X grows in chunks no larger than its bound (1 MB ones made a 2-gene panel of the demo
    # 3 times the whole result): at most a chunk index's few kB over the whole file
    concat_files(release, release["dir"] / "out" / "all.h5ad")
    assert out.stat().st_size < (release["dir"] / "out" / "all.h5ad").stat().st_size + 8192
    with pytest.raises(AbcError, match="none of the 2 names of output.genes is a gene"):
        concat_files(release, release["dir"] / "out" / "none.h5ad", gene_panel=["X1", "X2"])
