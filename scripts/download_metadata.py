"""Rule download_metadata: one metadata table of the release into the shared cache
(verified, resumable), then the project's receipt for it. A file already in the cache is
checked, not fetched again."""

from abc_downsample.cache.download import cache_with_receipt
from abc_downsample.release.manifest import Manifest
from abc_downsample.rule_io import run


def main():
    manifest = Manifest.load(snakemake.input.manifest)
    relative_path = snakemake.params.relative_path
    cache_with_receipt(manifest, relative_path, snakemake.output[0], snakemake.config["abc"])


run(main, snakemake.log[0])
