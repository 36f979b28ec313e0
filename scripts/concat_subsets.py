"""Rule script: all subsets to the final downsampled h5ad, streaming."""

import logging

from abc_downsample.concat import concat_release
from abc_downsample.rule_io import run


def main():
    stats = concat_release(
        list(snakemake.input.subsets),
        snakemake.output.h5ad,
        cells_csv=snakemake.input.cells,
        cell_metadata=snakemake.input.cell_metadata,
        taxonomy=snakemake.input.taxonomy,
        genes=snakemake.input.genes,
        provenance=dict(snakemake.params.provenance),
        colors=next(iter(snakemake.input.get("colors", [])), None),  # absent from some releases
    )
    logging.getLogger("abc_downsample").info(stats.summary())


run(main, snakemake.log[0])
