"""Rule script: all subsets to the final downsampled h5ad, streaming."""

import logging

from abc_downsample.atomic import write_done_marker
from abc_downsample.cache.download import cached_input
from abc_downsample.concat.build import concat_release
from abc_downsample.dataset.profile import as_list, dataset_of_rule
from abc_downsample.provenance import read_marker, sampling_record
from abc_downsample.rule_io import run


def main():
    inp, abc = snakemake.input, snakemake.config["abc"]
    stats = concat_release(
        list(inp.subsets),
        snakemake.output.h5ad,
        cells_csv=inp.cells,
        sample_rows=inp.sample_rows,
        taxonomy=[cached_input(path, abc) for path in as_list(inp.taxonomy)],
        genes=next((cached_input(path, abc) for path in as_list(inp.get("genes"))), None),
        provenance={
            **snakemake.params.provenance,
            **sampling_record(read_marker(inp.sample_done)),
        },
        dataset=dataset_of_rule(snakemake.params, abc),
        population=inp.population,
        gene_panel=inp.get("panel") or snakemake.params.settings.get("genes"),
    )
    logging.getLogger("abc_downsample").info(stats.summary())
    write_done_marker(snakemake.output.done, snakemake.params.settings)


run(main, snakemake.log[0])
