"""Rule report_landing: the report's first screen (embedded by workflow/report/workflow.rst)."""

from abc_downsample.provenance import read_provenance
from abc_downsample.release.manifest import Manifest
from abc_downsample.report import landing, plots
from abc_downsample.rule_io import run
from abc_downsample.run_messages import group_name, groups_name


def main():
    inp, params = snakemake.input, snakemake.params
    # what the run did, as the result records it (not this command's config)
    provenance = read_provenance(inp.result)
    column = provenance["cluster_column"]
    summary, levels = plots.read_summary(inp.summary), plots.read_levels(inp.levels)
    counts = plots.read_matrix_counts(inp.cells)
    source = landing.source_facts(
        Manifest.load(inp.manifest), counts, provenance, params.logs, groups_name(column),
        inp.plan,
    )
    bench = plots.read_benchmarks(params.benchmarks)
    fragment = landing.landing_fragment(
        summary, levels, counts, source, bench, group_name(column)
    )
    landing.write_landing(snakemake.output.html, fragment)


run(main, snakemake.log[0])
