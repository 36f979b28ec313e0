"""Rule script: all subsets to the final downsampled h5ad, streaming."""

import logging

from abc_downsample.atomic import write_done_marker
from abc_downsample.cache.download import cached_input
from abc_downsample.concat.build import concat_release
from abc_downsample.dataset.profile import as_list, dataset_of_rule
from abc_downsample.rule_io import run


def main():
    inp, abc = snakemake.input, snakemake.config["abc"]
    stats = concat_release(
        list(inp.subsets),
        snakemake.output.h5ad,
        cells_csv=inp.cells,
        sample_rows=inp.sample_rows,
        taxonomy=[cached_input(path, abc) for path in as_list(inp.taxonomy)],
        genes=cached_input(inp.genes, abc),
        provenance=dict(snakemake.params.provenance),
        dataset=dataset_of_rule(snakemake.params, abc),
        gene_panel=inp.get("panel") or snakemake.params.get("genes"),
    )
    logging.getLogger("abc_downsample").info(stats.summary())
    write_done_marker(snakemake.output.done, snakemake.params.settings)


run(main, snakemake.log[0])
