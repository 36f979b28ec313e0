"""Rule script: sample the cells (or take a given list) and explain the sample."""

from abc_downsample.rule_io import run
from abc_downsample.sampling import sample_to_files


def main():
    sample_to_files(
        snakemake.input.cell_metadata,
        snakemake.input.taxonomy,
        dict(snakemake.params.sampling),
        snakemake.output.cells,
        snakemake.output.summary,
        snakemake.output.levels,
    )


run(main, snakemake.log[0])
