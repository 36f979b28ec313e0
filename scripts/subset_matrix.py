"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

The job gets its matrix itself (``abc.transfer``): from the shared cache, downloading it
there first if need be (download), by byte ranges (stream), or the cheaper way (auto). With
download_on_host, ``input.matrix`` is the receipt of a download job that filled the cache.
"""

import logging

from abc_downsample.atomic import write_done_marker
from abc_downsample.cache.layout import entry_from_fields, read_receipt
from abc_downsample.rule_io import run


def main():
    from abc_downsample.subset.job import subset_matrix_file

    p, inp = snakemake.params, snakemake.input
    receipt = getattr(inp, "matrix", None)
    entry = read_receipt(receipt) if receipt else entry_from_fields(p.file)
    # transport tuning comes from the config, not params: tuning never reruns a job
    stats = subset_matrix_file(
        snakemake.config["abc"], entry, inp.cells, snakemake.output.h5ad, p.matrix,
        downloaded=bool(receipt),
    )  # fmt: skip
    logging.getLogger("abc_downsample").info(stats.summary(p.matrix))
    write_done_marker(snakemake.output.done, p.settings)


run(main, snakemake.log[0])
