"""Rule download_matrix: one matrix file into the shared cache (abc.download_on_host)
(verified, resumable), then the project's receipt for it. A file already in the cache is
checked, not fetched again."""

from abc_downsample.cache.download import download_rule

download_rule(snakemake)
