"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

Download mode reads the cached file (``input.matrix`` is its receipt); stream mode (no
local input) reads the remote file by byte ranges; auto (no local input) plans both and
either streams or downloads the file into the cache itself, then subsets it.
"""

import logging

from abc_downsample.atomic import write_done_marker
from abc_downsample.rule_io import run


def main():
    from abc_downsample.cache import forget, read_receipt
    from abc_downsample.download import use_cached
    from abc_downsample.manifest import FileEntry

    matrix, params = snakemake.params.matrix, snakemake.params
    abc = snakemake.config["abc"]  # transport tuning comes from the config, not params
    log = logging.getLogger("abc_downsample")
    receipt = getattr(snakemake.input, "matrix", None)
    entry = read_receipt(receipt) if receipt else FileEntry(
        "", "", "", None, params.relative_path, params.size, params.md5, ""
    )
    cached = []  # the cached file, once verified or downloaded

    def fetch_cached() -> str:
        # a cached file (ours, abc_atlas_access's, a mirror's) is verified, never trusted blind
        cached.append(use_cached(entry, abc, log))
        return str(cached[0])

    if receipt:
        from abc_downsample.subset import subset_local_file

        out, cells = snakemake.output.h5ad, snakemake.input.cells
        stats = subset_local_file(fetch_cached(), cells, out, matrix)
    else:
        from abc_downsample.remote_h5 import subset_from_config

        stats = subset_from_config(
            abc,
            entry.relative_path,
            snakemake.input.cells,
            snakemake.output.h5ad,
            matrix,
            fetch_cached=fetch_cached,
        )
    if cached and not abc["keep_matrices"]:
        forget(abc["cache_dir"], entry)
    log.info(stats.summary(matrix))
    write_done_marker(snakemake.output.done, snakemake.params.settings)


run(main, snakemake.log[0])
