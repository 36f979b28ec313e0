"""What a real run prints: a job's warning reaches the terminal once, and a failed run
ends with the one-line error of the job that failed."""

from pathlib import Path

import pandas as pd
import yaml
from conftest import ERROR, PROJECT, moto_config, run_snakemake
from synthetic_paths import CELLS


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


def one_line_error_last(result) -> str:
    """The run failed with no traceback or Snakemake exception block, its last line ours."""
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output and "Exception" not in output, output[-3000:]
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(ERROR), output[-3000:]
    return last


def test_a_release_without_a_table_the_dataset_needs_is_one_line(tmp_path, synthetic_release):
    """Raised inside an input function (the cell table's receipt), read at parse time."""
    profile = yaml.safe_load((PROJECT / "config" / "datasets" / "WMB-10X.yaml").read_text())
    profile["cells"]["table"]["name"] = "cell_metadata_v2"
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(profile))
    config = {"abc": {"bucket": str(synthetic_release["root"]), "dataset": "mine.yaml"}}
    last = one_line_error_last(run_snakemake(tmp_path, "-n", config=config))
    assert "cell_metadata_v2" in last


def test_an_unknown_matrix_target_is_one_line(tmp_path, synthetic_release):
    """Raised inside a param function (the matrix's manifest entry)."""
    config = {"abc": {"bucket": str(synthetic_release["root"])}}
    last = one_line_error_last(run_snakemake(tmp_path, "data/subsets/Nope.h5ad", config=config))
    assert "has no raw matrix Nope" in last
