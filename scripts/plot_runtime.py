"""Rule plot_runtime: wall time and peak memory of every job, from the benchmark files."""

from abc_downsample.report import plots
from abc_downsample.rule_io import run


def main():
    out, bench_dir = snakemake.output, snakemake.params.benchmarks
    plots.draw_safely(
        out.figure,
        "Runtime and memory",
        lambda: plots.plot_benchmarks(plots.read_benchmarks(bench_dir), out.figure),
    )
    plots.draw_safely(
        out.table,
        "Runtime and memory",
        lambda: plots.write_benchmark_table(plots.read_benchmarks(bench_dir), out.table),
    )


run(main, snakemake.log[0])
