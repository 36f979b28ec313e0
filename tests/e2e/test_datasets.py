"""End to end, per dataset profile: the real snakemake against a moto S3 server holding a
synthetic release with every dataset in its real shape; one run per dataset, shared by the
asserts. Results are checked against an independent reading of the synthetic files (pandas
+ anndata): the long taxonomy pivoted here, the matrices read whole.
"""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import RESULT, run_snakemake
from s3_server import MotoServer, upload_tree

from abc_downsample.demo.release import write_release

RELEASE = "20250531"
TARGET = 600
MIN_CLUSTER = 30
# dataset -> what the test reads independently and the config it runs with
DATASETS = {
    "WHB-10Xv3": {
        "cells": "metadata/WHB-10Xv3/20241115/cell_metadata.csv",
        "group": "cluster_alias",
        "long": "metadata/WHB-taxonomy/20240330/cluster_to_cluster_annotation_membership.csv",
        "levels": ["neurotransmitter", "supercluster", "cluster", "subcluster"],
        "genes": "metadata/WHB-10Xv3/20241115/gene.csv",
        "umap": True,
    },
    "Zeng-Aging-Mouse-10Xv3": {
        "cells": "metadata/Zeng-Aging-Mouse-10Xv3/20250131/cell_metadata.csv",
        "group": "cluster_alias",
        "pivot": "metadata/Zeng-Aging-Mouse-WMB-taxonomy/20241130/cluster_mapping_pivot.csv",
        "levels": ["class_name", "subclass_name", "supertype_name", "cluster_name"],
        "genes": "metadata/WMB-10X/20241115/gene.csv",
        "umap": True,
    },
    "HMBA-10xMultiome-BG": {
        "cells": "metadata/HMBA-10xMultiome-BG/20250531/cell_metadata.csv",
        "membership": "metadata/HMBA-BG-taxonomy-CCN20250428/20250531/"
        "cell_to_cluster_membership.csv",
        "group": "cluster_alias",
        "long": "metadata/HMBA-BG-taxonomy-CCN20250428/20250531/"
        "cluster_to_cluster_annotation_membership.csv",
        "levels": ["neighborhood", "class", "subclass", "group", "cluster"],
        "genes": "metadata/HMBA-10xMultiome-BG/20250531/human_gene.csv",
        "filters": {"feature_matrix_label": ["HMBA-10xMultiome-BG-Human"]},
        "umap": False,
    },
    "ASAP-PMDBS-10X": {
        "cells": "metadata/ASAP-PMDBS-10X/20250331/cell_metadata.csv",
        "group": "cluster_label",
        "levels": [],
        "genes": "metadata/ASAP-PMDBS-10X/20250331/gene.csv",
        "umap": False,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """One synthetic release holding every dataset, served by one moto server."""
    root = tmp_path_factory.mktemp("datasets") / "bucket"
    info = write_release(root, release=RELEASE, n_cells=600, n_genes=20, datasets=tuple(DATASETS))
    server = MotoServer()
    upload_tree(server.url, root)
    yield {"root": root, "url": server.url, "info": info}
    server.stop()


@pytest.fixture(scope="module", params=list(DATASETS))
def run(request, release, tmp_path_factory):
    """One snakemake run of a dataset, and the independent reading of its source."""
    name = request.param
    facts = DATASETS[name]
    workdir = tmp_path_factory.mktemp(f"run-{name}")
    config = {
        "abc": {"dataset": name, "release": RELEASE, "bucket": "allen-brain-cell-atlas",
                "endpoint_url": release["url"], "cache_dir": "abc_data"},
        "sampling": {"target_cells": TARGET, "min_cluster_size": MIN_CLUSTER,
                     "filters": facts.get("filters", {})},
    }  # fmt: skip
    result = run_snakemake(workdir, "--show-failed-logs", config=config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return {"name": name, "facts": facts, "workdir": workdir, "root": release["root"],
            "result": ad.read_h5ad(workdir / RESULT)}  # fmt: skip


def source_cells(run) -> pd.DataFrame:
    """The cell table (with the group joined from the membership table), filtered."""
    root, facts = run["root"], run["facts"]
    cells = pd.read_csv(root / facts["cells"], keep_default_na=False, dtype=str)
    if "membership" in facts:
        membership = pd.read_csv(root / facts["membership"], dtype=str)
        cells = cells.merge(membership, on="cell_label")
    for column, values in facts.get("filters", {}).items():
        cells = cells[cells[column].isin(values)]
    return cells.set_index("cell_label")


def source_terms(run) -> pd.DataFrame:
    """Terms per group, pivoted here from the long table, or the pivoted table as it is."""
    root, facts = run["root"], run["facts"]
    if "long" in facts:
        long = pd.read_csv(root / facts["long"], keep_default_na=False, dtype=str)
        return long.pivot(index="cluster_alias", columns="cluster_annotation_term_set_name",
                          values="cluster_annotation_term_name")  # fmt: skip
    if "pivot" in facts:
        return pd.read_csv(root / facts["pivot"], keep_default_na=False, dtype=str).set_index(
            "cluster_alias"
        )
    return pd.DataFrame()


def test_sample_size_rare_groups_whole_and_provenance(run):
    obs, cells = run["result"].obs, source_cells(run)
    group = run["facts"]["group"]
    assert len(obs) == min(TARGET, len(cells)) and obs.index.is_unique
    assert set(obs.index) <= set(cells.index)
    sizes = cells[group].value_counts()
    rare = set(cells.index[cells[group].map(sizes) < MIN_CLUSTER])
    assert rare and rare <= set(obs.index), "every cell of the rare groups"
    assert run["result"].uns["abc_downsample"]["dataset"] == run["name"]


def test_rows_are_the_source_rows(run):
    result, cells = run["result"], source_cells(run)
    matrix_of = cells.loc[result.obs.index, "feature_matrix_label"]
    for label in matrix_of.unique():
        directory = cells.loc[matrix_of.index[0], "dataset_label"]
        matrices = Path(run["root"], "expression_matrices", directory)
        source = ad.read_h5ad(next(matrices.glob(f"*/{label}-raw.h5ad")))
        mine = matrix_of.index[matrix_of == label]
        np.testing.assert_array_equal(result[mine].X.toarray(), source[mine].X.toarray())
    genes = pd.read_csv(Path(run["root"], run["facts"]["genes"]), keep_default_na=False)
    assert list(result.var.index) == list(genes["gene_identifier"])


def test_obs_has_the_group_and_every_level_of_the_profile(run):
    obs, cells = run["result"].obs, source_cells(run)
    group = run["facts"]["group"]
    keys = cells.loc[obs.index, group]
    assert (obs[group].astype(str).to_numpy() == keys.to_numpy()).all()
    terms = source_terms(run)
    for level in run["facts"]["levels"]:
        expected = terms[level].reindex(keys.to_numpy()).fillna("").to_numpy()
        got = obs[level].astype(object).where(obs[level].notna(), "").astype(str).to_numpy()
        assert (got == expected).all(), level
    if run["facts"]["umap"]:
        np.testing.assert_allclose(
            run["result"].obsm["X_umap"], cells.loc[obs.index, ["x", "y"]].astype(float)
        )


def test_atlas_colours_follow_the_taxonomy(run):
    facts, uns, obs = run["facts"], run["result"].uns, run["result"].obs
    if "long" not in facts:
        pytest.skip("colours only in the long tables here")
    long = pd.read_csv(Path(run["root"], facts["long"]), keep_default_na=False, dtype=str)
    for level in facts["levels"]:
        table = long[long["cluster_annotation_term_set_name"] == level]
        color = dict(zip(table["cluster_annotation_term_name"], table["color_hex_triplet"],
                         strict=False))  # fmt: skip
        categories = list(obs[level].cat.categories)
        assert list(uns[f"{level}_colors"]) == [color[t] for t in categories], level


def test_stream_mode_reads_lzf_chunks_alike(release, tmp_path):
    """The Aging matrix is lzf-compressed: stream mode decodes its chunks itself."""
    name = "Zeng-Aging-Mouse-10Xv3"
    config = {
        "abc": {"dataset": name, "release": RELEASE, "bucket": "allen-brain-cell-atlas",
                "endpoint_url": release["url"], "cache_dir": "abc_data", "transfer": "stream"},
        "sampling": {"target_cells": TARGET, "min_cluster_size": MIN_CLUSTER},
    }  # fmt: skip
    result = run_snakemake(tmp_path, "--show-failed-logs", config=config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    streamed = ad.read_h5ad(tmp_path / RESULT)
    cells = pd.read_csv(
        Path(release["root"], DATASETS[name]["cells"]), keep_default_na=False, dtype=str
    )
    matrix = next(Path(release["root"], "expression_matrices", name).glob("*/*-raw.h5ad"))
    source = ad.read_h5ad(matrix)
    assert set(streamed.obs.index) <= set(cells["cell_label"])
    np.testing.assert_array_equal(
        streamed.X.toarray(), source[streamed.obs.index].X.toarray()
    )
