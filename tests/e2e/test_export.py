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
from conftest import RESULT, r_env_pins, snakemake_ok
from synthetic_paths import COLORS, PIVOTED
from test_workflow import workflow_config

LEVELS = ["neurotransmitter", "class", "subclass", "supertype", "cluster"]
R_PACKAGES = ["Seurat", "SingleCellExperiment", "DropletUtils", "hdf5r"]


def r_missing() -> str | None:
    """Why the R checks cannot run here, or None."""
    if not shutil.which("Rscript"):
        return "Rscript not installed (Debian r-base-core; see .ci/run)"
    check = "for (p in commandArgs(TRUE)) if (!requireNamespace(p, quietly=TRUE)) cat(p, '')"
    result = subprocess.run(["Rscript", "-e", check, *R_PACKAGES],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    missing = result.stdout.strip()
    return f"R packages missing: {missing} (see .ci/run)" if missing else None


R_MISSING = r_missing()
needs_r = pytest.mark.skipif(R_MISSING is not None, reason=str(R_MISSING))


@pytest.fixture(scope="module")
def run(tmp_path_factory, s3_endpoint):
    workdir = tmp_path_factory.mktemp("e2e_export")
    targets = ["export_r"] + ([] if R_MISSING else ["r_objects"])
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


def test_scanpy_draws_the_atlas_umap_in_the_atlas_colours(run, result, atlas_colors):
    sc = pytest.importorskip("scanpy")
    import matplotlib

    matplotlib.use("Agg")
    adata = sc.read_h5ad(run["workdir"] / RESULT)  # as a user opens it (no copy)
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


# ---- R --------------------------------------------------------------------------------

# What R reads, with R's own functions only, written back as plain files for the checks.
R_READS = r"""
suppressPackageStartupMessages({
  library(Matrix); library(Seurat); library(SingleCellExperiment); library(DropletUtils)
})
args <- commandArgs(TRUE); dir <- args[1]; out <- args[2]
dump <- function(m, name) {
  writeMM(as(m, "CsparseMatrix"), file.path(out, paste0(name, ".mtx")))
  writeLines(rownames(m), file.path(out, paste0(name, ".rows")))
  writeLines(colnames(m), file.path(out, paste0(name, ".cols")))
}
dump(Read10X_h5(file.path(dir, "matrix.h5"), use.names = FALSE), "read10x_h5")
dropped <- read10xCounts(file.path(dir, "matrix.h5"), col.names = TRUE)
dump(counts(dropped), "read10xcounts")
writeLines(rowData(dropped)$Symbol, file.path(out, "read10xcounts.symbols"))

seurat <- readRDS(file.path(dir, "seurat.rds"))
dump(GetAssayData(seurat, slot = "counts"), "seurat")
write.csv(seurat[[]], file.path(out, "seurat_meta.csv"), na = "")
write.csv(Embeddings(seurat, "umap"), file.path(out, "seurat_umap.csv"))
writeLines(levels(seurat$class), file.path(out, "seurat_class_levels"))
writeLines(Misc(seurat, "colors")$class, file.path(out, "seurat_class_colors"))
writeLines(seurat[["RNA"]][["gene_identifier"]][[1]], file.path(out, "seurat.ids"))
classes <- function(table) vapply(table, function(column) class(column)[1], "")
write.csv(data.frame(class = classes(seurat[[]])), file.path(out, "seurat_classes.csv"))
writeLines(levels(Idents(seurat)), file.path(out, "seurat_ident_levels"))
writeLines(as.character(Idents(seurat)), file.path(out, "seurat_idents"))

sce <- readRDS(file.path(dir, "sce.rds"))
dump(counts(sce), "sce")
write.csv(as.data.frame(colData(sce)), file.path(out, "sce_meta.csv"), na = "")
write.csv(reducedDim(sce, "UMAP"), file.path(out, "sce_umap.csv"))
writeLines(S4Vectors::metadata(sce)$colors$class, file.path(out, "sce_class_colors"))
writeLines(names(S4Vectors::metadata(sce)$colors$class), file.path(out, "sce_class_terms"))
write.csv(data.frame(class = classes(as.data.frame(colData(sce)))),
          file.path(out, "sce_classes.csv"))
writeLines(as.character(colLabels(sce)), file.path(out, "sce_labels"))
versions <- vapply(c("SeuratObject", "SingleCellExperiment", "hdf5r", "Matrix"),
                   function(p) as.character(packageVersion(p)), "")
writeLines(c(as.character(getRversion()), versions), file.path(out, "versions"))
"""


@pytest.fixture(scope="module")
def r_read(run, tmp_path_factory):
    """Run R once on the export and the .rds files; the directory of what it read."""
    out = tmp_path_factory.mktemp("r_read")
    script = out / "read.R"
    script.write_text(R_READS)
    r_dir = run["workdir"] / "data" / "r"
    result = subprocess.run(["Rscript", str(script), str(r_dir), str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def r_matrix(out: Path, name: str) -> sp.csr_matrix:
    """What R read, as cells x genes (R's matrices are genes x cells)."""
    return sp.csr_matrix(scipy.io.mmread(out / f"{name}.mtx").T)


def r_lines(out: Path, name: str) -> list[str]:
    return (out / name).read_text().splitlines()


@needs_r
@pytest.mark.parametrize("reader", ["read10x_h5", "read10xcounts", "sce"])
def test_r_reads_the_counts_of_the_h5ad(r_read, result, reader):
    counts = r_matrix(r_read, reader)
    assert (counts != result.X).nnz == 0 and counts.shape == result.shape
    assert r_lines(r_read, f"{reader}.cols") == list(result.obs_names)
    assert r_lines(r_read, f"{reader}.rows") == list(result.var_names)


@needs_r
def test_seurat_has_the_counts_by_unique_symbol_and_keeps_the_ids(r_read, result):
    counts = r_matrix(r_read, "seurat")
    assert (counts != result.X).nnz == 0
    symbols = pd.Index(result.var["gene_symbol"].astype(str))
    assert r_lines(r_read, "seurat.rows") == list(ad.utils.make_index_unique(symbols))
    assert r_lines(r_read, "seurat.ids") == list(result.var_names)
    assert r_lines(r_read, "read10xcounts.symbols") == list(symbols)


@needs_r
@pytest.mark.parametrize("obj", ["seurat", "sce"])
def test_r_objects_have_the_metadata_umap_and_colours(r_read, result, obj, atlas_colors):
    meta = pd.read_csv(r_read / f"{obj}_meta.csv", index_col=0, keep_default_na=False,
                       dtype=str)  # fmt: skip
    assert list(meta.index) == list(result.obs_names)
    for column in result.obs.columns:
        expected = result.obs[column].astype(object).where(result.obs[column].notna(), "")
        if column in ("x", "y"):
            np.testing.assert_allclose(meta[column].astype(float), expected.astype(float))
        else:  # missing values written as "": the literal term "NA" must stay a term
            assert (meta[column] == expected.astype(str)).all(), column
    assert "NA" in set(meta["neurotransmitter"]) and result.obs["neurotransmitter"].notna().all()
    umap = pd.read_csv(r_read / f"{obj}_umap.csv", index_col=0)
    assert list(umap.index) == list(result.obs_names)
    np.testing.assert_allclose(umap.to_numpy(), result.obsm["X_umap"])
    classes = list(result.obs["class"].cat.categories)
    assert r_lines(r_read, f"{obj}_class_colors") == [atlas_colors["class"][t] for t in classes]


@needs_r
@pytest.mark.parametrize("obj", ["seurat", "sce"])
def test_group_columns_are_factors_and_columns_naming_cells_character(r_read, result, obj):
    """A factor with one level per cell helps no one (issue 22, finding 7): the h5ad's
    categorical columns are factors, its text columns (barcodes, sample ids) character."""
    classes = pd.read_csv(r_read / f"{obj}_classes.csv", index_col=0)["class"]
    obs = result.obs
    assert obs["abc_sample_id"].dtype == object and classes["abc_sample_id"] == "character"
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            # a column with no values at all (brain_section_label of 10x cells): R's NA
            assert classes[column] == "factor" or obs[column].isna().all(), column
        elif obs[column].dtype == object:
            assert classes[column] == "character", column


@needs_r
def test_idents_and_labels_are_the_finest_level(r_read, result):
    clusters = result.obs["cluster"]
    assert r_lines(r_read, "seurat_ident_levels") == list(clusters.cat.categories)
    assert r_lines(r_read, "seurat_idents") == list(clusters.astype(str))
    assert r_lines(r_read, "sce_labels") == list(clusters.astype(str))


@needs_r
def test_the_r_that_ran_is_the_one_envs_r_yaml_pins(r_read):
    pins = r_env_pins()
    r, seurat_object, sce, hdf5r, matrix = r_lines(r_read, "versions")
    assert (r, seurat_object, sce, hdf5r) == (
        pins["r-base"], pins["r-seuratobject"], pins["bioconductor-singlecellexperiment"],
        pins["r-hdf5r"])  # fmt: skip
    assert matrix == pins["r-matrix"].replace("_", ".")  # R says 1.5-3 as 1.5.3


@needs_r
def test_r_factors_keep_the_h5ad_category_order(r_read, result):
    assert r_lines(r_read, "seurat_class_levels") == list(result.obs["class"].cat.categories)
    assert r_lines(r_read, "sce_class_terms") == list(result.obs["class"].cat.categories)
