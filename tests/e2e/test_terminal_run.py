"""What a real run prints: a job's warning reaches the terminal once, and a failed run
ends with the one-line error of the job that failed."""

from pathlib import Path

import pandas as pd
from conftest import ERROR, run_snakemake
from synthetic_paths import CELLS


def moto_config(endpoint_url: str, **sampling) -> dict:
    return {
        "abc": {"bucket": "allen-brain-cell-atlas", "endpoint_url": endpoint_url},
        "sampling": {"target_cells": 1500, "min_cluster_size": 50, **sampling},
    }


def test_a_warning_of_a_job_reaches_the_terminal(tmp_path, s3_endpoint, synthetic_release):
    cells = pd.read_csv(Path(synthetic_release["root"], CELLS), keep_default_na=False)
    population = int((cells["library_method"] == "10Xv3").sum())
    config = moto_config(
        s3_endpoint, target_cells=population + 100, filters={"library_method": ["10Xv3"]}
    )
    result = run_snakemake(tmp_path, "data/sampling_summary.csv", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    warning = (
        f"abc-downsample: warning: target_cells={population + 100} is not below the "
        f"population of {population} cells: taking all of them"
    )
    assert result.stderr.splitlines().count(warning) == 1
    assert "warning:" not in result.stdout
    summary = pd.read_csv(tmp_path / "data" / "sampling_summary.csv")
    lines = result.stderr.splitlines()
    assert lines[-2].startswith(f"abc-downsample: done: {population:,} of {population:,} cells")
    assert f"{summary['kept_whole'].sum()} of {len(summary)} clusters kept whole" in lines[-2]
    assert lines[-1] == (
        "abc-downsample: sample: data/downsampled_cells.csv "
        "(data/downsampled_expression.h5ad is not built from it yet)"
    )


def test_a_failed_run_ends_with_the_one_line_error(tmp_path, s3_endpoint):
    (tmp_path / "cells.csv").write_text("cell_label\nno-such-cell\n")
    config = moto_config(s3_endpoint, cells_file="cells.csv")
    result = run_snakemake(tmp_path, config=config)
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last == (
        f"{ERROR} 1 cell label(s) of sampling.cells_file cells.csv are not in the cell "
        "metadata, e.g. 'no-such-cell': is it a list of this release?"
    ), result.stderr[-3000:]
    assert result.stderr.count(last) == 2  # once as it happened, once at the end
