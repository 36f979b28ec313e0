"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

Download mode reads the cached file (``input.matrix`` is its receipt); stream mode (no
local input) reads the remote file by byte ranges; auto (no local input) plans both and
either streams or downloads the file into the cache itself, then subsets it.
"""

import logging

from abc_downsample.atomic import write_done_marker
from abc_downsample.cache import entry_from_fields, read_receipt
from abc_downsample.rule_io import run


def main():
    from abc_downsample.subset_job import subset_matrix_file

    p, inp = snakemake.params, snakemake.input
    receipt = getattr(inp, "matrix", None)
    entry = read_receipt(receipt) if receipt else entry_from_fields(p.file)
    # transport tuning comes from the config, not params: tuning never reruns a job
    stats = subset_matrix_file(
        snakemake.config["abc"], entry, inp.cells, snakemake.output.h5ad, p.matrix, bool(receipt)
    )
    logging.getLogger("abc_downsample").info(stats.summary(p.matrix))
    write_done_marker(snakemake.output.done, p.settings)


run(main, snakemake.log[0])
