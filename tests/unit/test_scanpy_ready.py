"""The result is scanpy/cellxgene-ready: atlas UMAP, atlas colours, categorical groups."""

import anndata as ad
import numpy as np
import pandas as pd
from test_concat import concat_files, release  # noqa: F401 (a fixture)

from abc_downsample.concat.build import MISSING_TERM_COLOR, _text_categories
from abc_downsample.dataset.profile import load_dataset

TAXONOMY_LEVELS = list(load_dataset().taxonomy.columns)

# The fixture's taxonomy: cluster_alias 1..4 -> one term per level each.
TERMS = {
    "class": ["01 IT-ET Glut", "30 Astro-Epen", "06 CTX-CGE GABA", "34 Immune"],
    "subclass": ["s1", "s2", "s3", "s4"],
    "supertype": ["t1", "t2", "t3", "t4"],
    "cluster": ["c1", "c2", "c3", "c4"],
    "neurotransmitter": ["Glut", "NA", "GABA", ""],
}
COLORS = {level: [f"#{i}{i}{k}{k}00" for k in range(4)] for i, level in enumerate(TERMS)}


def write_colors(path, colors=COLORS):
    table = pd.DataFrame({"cluster_alias": [1, 2, 3, 4]})
    for level, values in colors.items():
        table[f"{level}_color"] = values
    table.to_csv(path, index=False)
    return path


def atlas_color(level: str, term: str) -> str:
    return COLORS[level][TERMS[level].index(term)]


def test_atlas_umap_and_colours_in_category_order(release):  # noqa: F811
    out = release["dir"] / "final.h5ad"
    concat_files(release, out, colors=write_colors(release["dir"] / "colors.csv"))
    result = ad.read_h5ad(out)
    np.testing.assert_array_equal(result.obsm["X_umap"], result.obs[["x", "y"]].to_numpy())
    for level in TAXONOMY_LEVELS:
        categories = result.obs[level].cat.categories
        assert list(result.uns[f"{level}_colors"]) == [atlas_color(level, t) for t in categories]
    assert "NA" in result.obs["neurotransmitter"].cat.categories  # a term, coloured as one


def test_cluster_alias_is_a_text_category_in_numeric_order(release):  # noqa: F811
    """scanpy's rank_genes_groups joins a group key's categories as text: int categories
    failed (issue 22, finding 6). Text, in the keys' numeric order."""
    out = release["dir"] / "final.h5ad"
    concat_files(release, out)
    alias = ad.read_h5ad(out).obs["cluster_alias"]
    assert isinstance(alias.dtype, pd.CategoricalDtype)
    aliases = sorted(set(release["metadata"]["cluster_alias"]))
    assert list(alias.cat.categories) == [str(a) for a in aliases]
    keys = _text_categories(pd.Series([10, 2, 1, 2, 1.0]))
    assert list(keys.cat.categories) == ["1", "2", "10"]


def test_the_group_key_has_the_colours_of_its_finest_terms(release):  # noqa: F811
    """More than 102 categories without colours paint every cell grey in sc.pl.umap: each
    cluster_alias gets its cluster's atlas colour (issue 22, finding 6)."""
    out = release["dir"] / "final.h5ad"
    concat_files(release, out, colors=write_colors(release["dir"] / "colors.csv"))
    result = ad.read_h5ad(out)
    aliases = result.obs["cluster_alias"].cat.categories
    assert list(result.uns["cluster_alias_colors"]) == [
        COLORS["cluster"][int(a) - 1] for a in aliases
    ]


def test_terms_without_colour_are_grey_and_levels_without_colours_left_out(release):  # noqa: F811
    colors = {level: list(values) for level, values in COLORS.items() if level != "supertype"}
    colors["class"][1] = ""  # 30 Astro-Epen has no colour
    out = release["dir"] / "final.h5ad"
    concat_files(release, out, colors=write_colors(release["dir"] / "colors.csv", colors))
    result = ad.read_h5ad(out)
    assert "supertype_colors" not in result.uns
    classes = result.obs["class"].cat.categories
    expected = [MISSING_TERM_COLOR if t == "30 Astro-Epen" else atlas_color("class", t)
                for t in classes]  # fmt: skip
    assert list(result.uns["class_colors"]) == expected


def test_without_a_colour_table_the_result_has_no_colours(release):  # noqa: F811
    out = release["dir"] / "final.h5ad"
    concat_files(release, out, colors=None)
    result = ad.read_h5ad(out)
    assert not [key for key in result.uns if key.endswith("_colors")]
    assert "X_umap" in result.obsm


def test_genes_by_symbol_the_documented_way(release):  # noqa: F811
    """README: adata.var_names = adata.var["gene_symbol"]; adata.var_names_make_unique()."""
    genes = pd.read_csv(release["dir"] / "gene.csv")
    out = release["dir"] / "final.h5ad"
    concat_files(release, out)
    adata = ad.read_h5ad(out)
    adata.var["gene_symbol"] = adata.var["gene_symbol"].replace("Sym3", "Sym2")  # a duplicate
    adata.var_names = adata.var["gene_symbol"].astype(str)
    adata.var_names_make_unique()
    assert adata.var_names.is_unique and list(adata.var_names[2:4]) == ["Sym2", "Sym2-1"]
    np.testing.assert_array_equal(adata.var["gene_symbol"].index, adata.var_names)
    assert len(adata.var_names) == len(genes)
