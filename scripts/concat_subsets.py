"""Rule script: all subsets to the final downsampled h5ad, streaming."""

import logging

from abc_downsample.concat import concat_release
from abc_downsample.download import cached_input
from abc_downsample.rule_io import run


def main():
    inp, abc = snakemake.input, snakemake.config["abc"]
    colors = inp.get("colors", [])  # absent from some releases
    stats = concat_release(
        list(inp.subsets),
        snakemake.output.h5ad,
        cells_csv=inp.cells,
        cell_metadata=cached_input(inp.cell_metadata, abc),
        taxonomy=cached_input(inp.taxonomy, abc),
        genes=cached_input(inp.genes, abc),
        provenance=dict(snakemake.params.provenance),
        colors=cached_input(colors[0], abc) if colors else None,
    )
    logging.getLogger("abc_downsample").info(stats.summary())


run(main, snakemake.log[0])
