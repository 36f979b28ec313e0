"""Rule make_plan: the cost before the run, from the sample and the matrices' headers."""

import os

from abc_downsample.cache.download import cached_input
from abc_downsample.plan.card import make_plan, write_plan
from abc_downsample.release.manifest import Manifest
from abc_downsample.rule_io import log, run


def main():
    inp, out, params = snakemake.input, snakemake.output, snakemake.params
    abc = snakemake.config["abc"]
    plan = make_plan(
        Manifest.load(inp.manifest), inp.cells, inp.summary, inp.rows, abc,
        params.cluster_column, params.dataset,
        data_dir=os.path.dirname(out.text),  # output.dir: the plan's text is its first file
        cell_table=cached_input(inp.cell_metadata, abc), matrix_column=params.matrix_column,
    )  # fmt: skip
    for line in write_plan(plan, out.text, out.json):
        log.info("plan: %s", line)  # the terminal gets them at the end (messages.smk)


run(main, snakemake.log[0])
