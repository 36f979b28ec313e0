"""Rule script: download one manifest file into the cache, verified and resumable."""

import logging

from abc_downsample.download import MiB, fetch_file
from abc_downsample.manifest import Manifest
from abc_downsample.rule_io import run
from abc_downsample.storage import open_store


def main():
    abc = snakemake.config["abc"]
    settings = abc.get("download") or {}
    retries = int(settings.get("retries", 5))
    concurrency = int(settings.get("max_concurrency", 8))
    entry = Manifest.load(snakemake.input.manifest).entry_for(snakemake.params.relative_path)
    store = open_store(
        abc.get("bucket", "allen-brain-cell-atlas"),
        abc.get("endpoint_url"),
        retries=retries,
        max_pool=max(concurrency, 4),
    )
    fetch_file(
        store,
        entry.relative_path,
        snakemake.output[0],
        size=entry.size,
        md5=entry.md5,
        part_size=int(float(settings.get("part_size_mb", 64)) * MiB),
        max_concurrency=concurrency,
        retries=retries,
        log=logging.getLogger("abc_downsample.download"),
        verify_existing=abc.get("verify", "size"),
    )


run(main, snakemake.log[0])
