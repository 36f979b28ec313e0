"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

Download mode reads the cached file (``input.matrix``); stream mode (no local input)
reads the remote file by byte ranges.
"""

import logging

from abc_downsample.cache import check_cached
from abc_downsample.rule_io import run
from abc_downsample.subset import subset_local_file


def main():
    matrix = snakemake.params.matrix
    local = getattr(snakemake.input, "matrix", None)
    if local:
        # a cached file (ours, abc_atlas_access's, a mirror's) is checked, never re-fetched
        p = snakemake.params
        check_cached(local, p.size, p.md5, snakemake.config["abc"]["verify"])
        stats = subset_local_file(local, snakemake.input.cells, snakemake.output.h5ad, matrix)
    else:
        from abc_downsample.remote_h5 import subset_from_config

        stats = subset_from_config(
            snakemake.config["abc"],  # transport tuning comes from the config, not params
            snakemake.params.relative_path,
            snakemake.input.cells,
            snakemake.output.h5ad,
            matrix,
        )
    logging.getLogger("abc_downsample").info(stats.summary(matrix))


run(main, snakemake.log[0])
