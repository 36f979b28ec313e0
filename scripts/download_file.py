"""Rule script: download one manifest file into the cache, verified and resumable."""

import logging

from abc_downsample.download import MiB, fetch_file
from abc_downsample.manifest import Manifest
from abc_downsample.rule_io import run
from abc_downsample.storage import open_store


def main():
    # transfer settings come from the (validated) config, not params: tuning them must
    # never make Snakemake download a cached file again
    abc = snakemake.config["abc"]
    settings = abc["download"]
    entry = Manifest.load(snakemake.input.manifest).entry_for(snakemake.params.relative_path)
    store = open_store(
        abc["bucket"],
        abc["endpoint_url"],
        retries=settings["retries"],
        max_pool=max(settings["max_concurrency"], 4),
    )
    fetch_file(
        store,
        entry.relative_path,
        snakemake.output[0],
        size=entry.size,
        md5=entry.md5,
        part_size=settings["part_size_mb"] * MiB,
        max_concurrency=settings["max_concurrency"],
        retries=settings["retries"],
        log=logging.getLogger("abc_downsample.download"),
        verify_existing=abc["verify"],
    )


run(main, snakemake.log[0])
