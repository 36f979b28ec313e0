"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

Download mode reads the cached file (``input.matrix`` is its receipt); stream mode (no
local input) reads the remote file by byte ranges.
"""

import logging

from abc_downsample.cache import forget, read_receipt
from abc_downsample.download import use_cached
from abc_downsample.rule_io import run
from abc_downsample.subset import subset_local_file


def main():
    matrix, abc = snakemake.params.matrix, snakemake.config["abc"]
    log = logging.getLogger("abc_downsample")
    receipt = getattr(snakemake.input, "matrix", None)
    if receipt:
        # a cached file (ours, abc_atlas_access's, a mirror's) is verified, never trusted blind
        entry = read_receipt(receipt)
        local = use_cached(entry, abc, log)
        stats = subset_local_file(local, snakemake.input.cells, snakemake.output.h5ad, matrix)
        if not abc["keep_matrices"]:
            forget(abc["cache_dir"], entry)
    else:
        from abc_downsample.remote_h5 import subset_from_config

        stats = subset_from_config(
            abc,  # transport tuning comes from the config, not params
            snakemake.params.relative_path,
            snakemake.input.cells,
            snakemake.output.h5ad,
            matrix,
        )
    log.info(stats.summary(matrix))


run(main, snakemake.log[0])
