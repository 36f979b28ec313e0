"""Rule plot_sampling: figures and the summary table of what the sample kept."""

from abc_downsample import plots
from abc_downsample.download import cached_input
from abc_downsample.rule_io import run


def main():
    inp, out, params = snakemake.input, snakemake.output, snakemake.params
    group = plots.group_name(params.cluster_column)
    abc = snakemake.config["abc"]
    # the colour table is absent from some releases
    color_table = cached_input(inp.colors[0], abc) if inp.colors else None
    taxonomy = cached_input(inp.taxonomy, abc)

    def colors(level):
        return plots.term_colors_or_none(color_table, taxonomy, level)

    plots.draw_safely(
        out.sizes,
        f"Cells per {group}",
        lambda: plots.plot_group_sizes(
            plots.read_summary(inp.summary), params.min_cluster_size, out.sizes, group
        ),
    )
    for level, path in (("class", out.classes), ("subclass", out.subclasses)):
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
