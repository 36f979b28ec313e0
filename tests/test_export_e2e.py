"""The result in its users' real clients: scanpy on the h5ad, R on the R export.

One real snakemake run against the moto server (the result, the R files and, where R is
installed, the R objects) serves every test of this module; R runs once for all R checks.
"""

import shutil
import subprocess
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from test_workflow_e2e import PIVOTED, RESULT, snakemake_ok, workflow_config

pytestmark = pytest.mark.e2e

COLORS = "metadata/WMB-taxonomy/20231215/views/cluster_to_cluster_annotation_membership_color.csv"
LEVELS = ["neurotransmitter", "class", "subclass", "supertype", "cluster"]
R_PACKAGES = ["Seurat", "SingleCellExperiment", "DropletUtils", "hdf5r"]


def r_missing() -> str | None:
    """Why the R checks cannot run here, or None."""
    if not shutil.which("Rscript"):
        return "Rscript not installed (Debian r-base-core; see .ci/run)"
    check = "for (p in commandArgs(TRUE)) if (!requireNamespace(p, quietly=TRUE)) cat(p, '')"
    result = subprocess.run(["Rscript", "-e", check, "--args", *R_PACKAGES],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    missing = result.stdout.strip()
    return f"R packages missing: {missing} (see .ci/run)" if missing else None


R_MISSING = r_missing()
needs_r = pytest.mark.skipif(R_MISSING is not None, reason=str(R_MISSING))


@pytest.fixture(scope="module")
def run(tmp_path_factory, s3_endpoint):
    workdir = tmp_path_factory.mktemp("e2e_export")
    targets = ["all", "export_r"] + ([] if R_MISSING else ["r_objects"])
    output = snakemake_ok(workdir, *targets, config=workflow_config(s3_endpoint))
    return {"workdir": workdir, "output": output}


@pytest.fixture(scope="module")
def result(run):
    return ad.read_h5ad(run["workdir"] / RESULT)


@pytest.fixture(scope="module")
def atlas_colors(synthetic_release) -> dict[str, dict[str, str]]:
    """{level: {term: colour}} read independently from the release's two tables."""
    root = Path(synthetic_release["root"])
    terms = pd.read_csv(root / PIVOTED, keep_default_na=False, dtype=str)
    colors = pd.read_csv(root / COLORS, keep_default_na=False, dtype=str)
    table = terms.merge(colors, on="cluster_alias")
    return {level: dict(zip(table[level], table[f"{level}_color"], strict=True))
            for level in LEVELS}  # fmt: skip


# ---- scanpy ---------------------------------------------------------------------------


def test_scanpy_draws_the_atlas_umap_in_the_atlas_colours(result, atlas_colors):
    sc = pytest.importorskip("scanpy")
    import matplotlib

    matplotlib.use("Agg")
    adata = result.copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=10)
    axes = sc.pl.umap(adata, color="class", show=False)
    classes = adata.obs["class"].cat.categories
    points = axes.collections[0]
    drawn_at = np.asarray(points.get_offsets())
    atlas_at = result.obs[["x", "y"]].to_numpy()
    assert drawn_at.shape == atlas_at.shape
    np.testing.assert_allclose(np.sort(drawn_at, axis=0), np.sort(atlas_at, axis=0))
    drawn = {tuple(np.round(c[:3], 4)) for c in points.get_facecolors()}
    expected = {tuple(np.round(matplotlib.colors.to_rgb(atlas_colors["class"][t]), 4))
                for t in classes}  # fmt: skip
    assert drawn == expected, "every cell in its class's atlas colour, and no other"
    assert list(adata.uns["class_colors"]) == [atlas_colors["class"][t] for t in classes]
    matplotlib.pyplot.close("all")
