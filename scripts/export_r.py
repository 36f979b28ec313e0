"""Rule script: the result as a 10x HDF5 and CSV tables that R reads without Python."""

import logging

from abc_downsample.export.r_export import export_for_r
from abc_downsample.rule_io import run


def main():
    out = snakemake.output
    summary = export_for_r(
        snakemake.input.h5ad,
        h5=out.h5,
        cells=out.cells,
        umap=out.umap,
        colors=out.colors,
        levels=out.levels,
        genome=snakemake.params.genome,
        gzip_level=snakemake.params.gzip_level,
    )
    logging.getLogger("abc_downsample").info(summary)


run(main, snakemake.log[0])
