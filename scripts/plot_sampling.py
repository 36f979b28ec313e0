"""Rule plot_sampling: figures and the summary table of what the sample kept."""

import pandas as pd

from abc_downsample.cache.download import cached_input
from abc_downsample.dataset.profile import as_list, dataset_of_rule
from abc_downsample.errors import AbcError
from abc_downsample.metadata.taxonomy import read_taxonomy
from abc_downsample.provenance import read_marker, sampling_record
from abc_downsample.report import plots
from abc_downsample.rule_io import run
from abc_downsample.run_messages import group_name


def main():
    inp, out, params = snakemake.input, snakemake.output, snakemake.params
    settings = sampling_record(read_marker(inp.sample_done))  # what the sample ran with
    group = group_name(settings["cluster_column"])
    # a given cell list has no size threshold: no group is kept whole for being small
    min_size = settings.get("min_cluster_size")
    abc = snakemake.config["abc"]
    dataset = dataset_of_rule(params, abc)
    try:  # the atlas colours where the taxonomy has them, else a fixed palette
        groups = pd.read_csv(inp.cells, usecols=[dataset.cells.group], dtype=str)
        files = [cached_input(path, abc) for path in as_list(inp.taxonomy)]
        taxonomy = read_taxonomy(files, dataset, groups[dataset.cells.group])
    except (AbcError, ValueError) as err:
        plots.log.warning("plotting without the atlas colours: %s", err)
        taxonomy = None

    def colors(level):
        return (taxonomy.term_colors(level) or None) if taxonomy else None

    plots.draw_safely(
        out.sizes,
        f"Cells per {group}",
        lambda: plots.plot_group_sizes(
            plots.read_summary(inp.summary), min_size, out.sizes, group
        ),
    )
    for level, path in zip(params.levels, (out.level1, out.level2), strict=True):
        plots.draw_safely(
            path,
            f"Cells per {level}",
            lambda level=level, path=path: plots.plot_level(
                plots.read_levels(inp.levels), level, path, colors(level)
            ),
        )
    plots.draw_safely(
        out.matrices,
        "Cells per matrix file",
        lambda: plots.plot_matrix_counts(plots.read_matrix_counts(inp.cells), out.matrices),
    )
    plots.draw_safely(
        out.table,
        "Sampling summary",
        lambda: plots.write_summary_table(
            plots.read_summary(inp.summary), plots.read_levels(inp.levels), out.table, group
        ),
    )


run(main, snakemake.log[0])
