"""scanpy's first steps on the demo's result, as its users take them (issue 22, finding 6):
rank_genes_groups by every obs group column, and the README's UMAP coloured by the group
key in the atlas's colours. The real snakemake on the offline demo (config/demo.yaml)."""

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import DEMO, DEMO_OUT, run_snakemake

matplotlib.use("Agg")
sc = pytest.importorskip("scanpy")



@pytest.fixture(scope="module")
def adata(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("scanpy")
    result = run_snakemake(workdir, config=DEMO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    adata = ad.read_h5ad(workdir / DEMO_OUT["expression"])
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    return adata


def group_columns(adata) -> list[str]:
    """obs columns that group cells: categorical, with at least two groups."""
    return [
        column
        for column in adata.obs.columns
        if isinstance(adata.obs[column].dtype, pd.CategoricalDtype)
        and adata.obs[column].nunique() >= 2
    ]


def test_rank_genes_groups_by_every_group_column(adata):
    columns = group_columns(adata)
    assert {"cluster_alias", "class", "subclass", "cluster", "library_method"} <= set(columns)
    for column in columns:
        sizes = adata.obs[column].value_counts()
        groups = [str(g) for g in sizes.index[sizes >= 2]]  # a statistic needs 2 cells
        sc.tl.rank_genes_groups(adata, column, groups=groups, key_added=f"rank_{column}")
        names = adata.uns[f"rank_{column}"]["names"]
        assert set(names.dtype.names) == set(groups), column


def test_per_cell_columns_are_text_not_groups(adata):
    for column in ("cell_barcode", "abc_sample_id"):
        assert adata.obs[column].dtype == object, column
        assert adata.obs[column].is_unique


def test_umap_by_the_group_key_is_in_the_atlas_colours(adata):
    """sc.pl.umap paints more than 102 categories without colours of their own grey."""
    keys = adata.obs["cluster_alias"].cat.categories
    atlas = list(adata.uns["cluster_alias_colors"])
    assert len(atlas) == len(keys) and len(set(atlas)) > 1
    # each alias in its cluster's colour
    clusters = adata.obs.groupby("cluster_alias", observed=True)["cluster"].first()
    cluster_color = dict(zip(adata.obs["cluster"].cat.categories, adata.uns["cluster_colors"],
                             strict=True))  # fmt: skip
    assert atlas == [cluster_color[clusters[k]] for k in keys]
    sc.pl.umap(adata, color="cluster_alias", show=False)
    assert list(adata.uns["cluster_alias_colors"]) == atlas, "scanpy replaced the colours"
    assert np.isfinite(adata.obsm["X_umap"]).all()
