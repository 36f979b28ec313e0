"""Rule script: sample the cells (or take a given list) and explain the sample."""

from abc_downsample.atomic import write_done_marker
from abc_downsample.download import cached_input
from abc_downsample.rule_io import run
from abc_downsample.sampling import sample_to_files


def main():
    inp, abc = snakemake.input, snakemake.config["abc"]
    sample_to_files(
        cached_input(inp.cell_metadata, abc),
        cached_input(inp.taxonomy, abc),
        dict(snakemake.params.sampling),
        snakemake.output.cells,
        snakemake.output.summary,
        snakemake.output.levels,
    )
    write_done_marker(snakemake.output.done, snakemake.params.settings)


run(main, snakemake.log[0])
