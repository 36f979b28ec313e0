# Optional targets for R users (not in `rule all`):
#   export_r:  a 10x HDF5 + cells/levels/umap/colors CSVs, read by Seurat/Bioconductor/base R
#   r_objects: seurat.rds and sce.rds, built by R in envs/r.yaml (no Python on the R side)

R_DIR = f"{OUT['dir']}/r"
R_FILES = {
    "h5": f"{R_DIR}/matrix.h5",
    "cells": f"{R_DIR}/cells.csv",
    "umap": f"{R_DIR}/umap.csv",
    "colors": f"{R_DIR}/colors.csv",
    "levels": f"{R_DIR}/levels.csv",
}


rule export_r:
    input:
        h5ad=OUT["expression"],
    output:
        **R_FILES,
    log:
        f"{LOGS}/export_r.log",
    benchmark:
        f"{BENCH}/export_r.tsv"
    conda:
        "../../envs/abc.yaml"
    resources:
        mem_mb=1024,
    params:
        genome=DATASET.genes.genome if DATASET.genes else "unknown",
        gzip_level=config["export_r"]["gzip_level"],
    script:
        "../../scripts/export_r.py"


rule r_objects:
    input:
        **R_FILES,
    output:
        seurat=f"{R_DIR}/seurat.rds",
        sce=f"{R_DIR}/sce.rds",
    log:
        f"{LOGS}/r_objects.log",
    benchmark:
        f"{BENCH}/r_objects.tsv"
    conda:
        "../../envs/r.yaml"
    resources:
        # R holds the whole matrix: ~32 bytes a non-zero at its peak
        mem_mb=r_objects_mem,
    params:
        # Idents() of the Seurat object, colLabels() of the SingleCellExperiment
        idents=LEVELS[-1],  # the finest level
    script:
        "../../scripts/r_objects.R"
