"""Rule script: the sampled cells of one matrix file to data/subsets/<matrix>.h5ad.

Download mode reads the cached file (``input.matrix``); stream mode (no local input)
reads the remote file by byte ranges; auto (no local input) plans both and either
streams or downloads the file into the cache itself, then subsets it.
"""

import logging

from abc_downsample.rule_io import run


def fetch_cached(abc: dict, params) -> str:
    """Download the matrix into the cache (verified) and return its path: auto's download
    branch. The lead's cache rework replaces this with the shared cache function."""
    import os

    from abc_downsample.download import MiB, fetch_file
    from abc_downsample.storage import open_store

    settings = abc["download"]
    store = open_store(
        abc["bucket"],
        abc["endpoint_url"],
        retries=settings["retries"],
        max_pool=max(settings["max_concurrency"], 4),
    )
    dest = os.path.join(abc["cache_dir"], params.relative_path)
    fetch_file(
        store,
        params.relative_path,
        dest,
        size=params.size,
        md5=params.md5,
        part_size=settings["part_size_mb"] * MiB,
        max_concurrency=settings["max_concurrency"],
        retries=settings["retries"],
        log=logging.getLogger("abc_downsample.download"),
        verify_existing=abc["verify"],
    )
    return dest


def main():
    matrix = snakemake.params.matrix
    local = getattr(snakemake.input, "matrix", None)
    abc = snakemake.config["abc"]  # transport tuning comes from the config, not params
    if local:
        from abc_downsample.cache import check_cached
        from abc_downsample.subset import subset_local_file

        # a cached file (ours, abc_atlas_access's, a mirror's) is checked, never re-fetched
        p = snakemake.params
        check_cached(local, p.size, p.md5, abc["verify"])
        stats = subset_local_file(local, snakemake.input.cells, snakemake.output.h5ad, matrix)
    else:
        from abc_downsample.remote_h5 import subset_from_config

        stats = subset_from_config(
            abc,
            snakemake.params.relative_path,
            snakemake.input.cells,
            snakemake.output.h5ad,
            matrix,
            fetch_cached=lambda: fetch_cached(abc, snakemake.params),
        )
    logging.getLogger("abc_downsample").info(stats.summary(matrix))


run(main, snakemake.log[0])
