"""Rule script: one manifest file into the shared cache (verified, resumable), then the
project's receipt for it. A file already in the cache is checked, not fetched again."""

import logging

from abc_downsample.cache.download import use_cached
from abc_downsample.cache.layout import write_receipt
from abc_downsample.release.manifest import Manifest
from abc_downsample.rule_io import run


def main():
    entry = Manifest.load(snakemake.input.manifest).entry_for(snakemake.params.relative_path)
    # transfer settings come from the (validated) config, not params: tuning them must
    # never rerun a job
    use_cached(entry, snakemake.config["abc"], logging.getLogger("abc_downsample.cache.download"))
    write_receipt(snakemake.output[0], entry)


run(main, snakemake.log[0])
