"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

Download mode reads the cached file (``input.matrix``); stream mode (no local input)
reads the remote file by byte ranges.
"""

import logging

from abc_downsample.rule_io import run
from abc_downsample.subset import subset_local_file


def main():
    matrix = snakemake.params.matrix
    local = getattr(snakemake.input, "matrix", None)
    if local:
        stats = subset_local_file(local, snakemake.input.cells, snakemake.output.h5ad, matrix)
    else:
        from abc_downsample.remote_h5 import subset_from_config

        stats = subset_from_config(
            snakemake.params.abc,
            snakemake.params.relative_path,
            snakemake.input.cells,
            snakemake.output.h5ad,
            matrix,
        )
    logging.getLogger("abc_downsample").info(stats.summary(matrix))


run(main, snakemake.log[0])
