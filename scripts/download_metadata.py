"""Rule download_metadata: one metadata table of the release into the shared cache
(verified, resumable), then the project's receipt for it. A file already in the cache is
checked, not fetched again."""

from abc_downsample.cache.download import download_rule

download_rule(snakemake)
