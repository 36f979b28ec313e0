"""One matrix file to one subset h5ad, on real files; and the rule script under Snakemake."""

import subprocess
import sys
import textwrap
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT, local_abc, receipts_for
from test_csr_rows import assert_same_csr, random_csr, write_h5ad

from abc_downsample.errors import AbcError
from abc_downsample.subset.local import labels_for_matrix, subset_local_file

N_FILE = 80  # rows in the matrix file; the last 10 are not in the sample's metadata


def file_labels(n=N_FILE):
    return [f"{i:04d}-AAC{i % 7}" for i in range(n)]


def write_cells_csv(path, picked, matrix="WMB-10Xv3-TH", other=("WMB-10Xv2-TH", 6)):
    """A downsampled_cells.csv: our picks interleaved with another matrix's cells."""
    other_label, n_other = other
    rows = [(label, 17, matrix, matrix[:9]) for label in picked]
    rows += [(f"other-{i}", 3, other_label, other_label[:9]) for i in range(n_other)]
    order = np.random.default_rng(0).permutation(len(rows))
    table = pd.DataFrame(
        [rows[i] for i in order],
        columns=["cell_label", "cluster_alias", "feature_matrix_label", "dataset_label"],
    )
    table.to_csv(path, index=False)
    return table


@pytest.fixture(params=["contiguous", "chunked-gzip"])
def matrix_file(tmp_path, request):
    path = tmp_path / "WMB-10Xv3-TH-raw.h5ad"
    write_h5ad(path, random_csr(N_FILE, 25, np.float32, seed=11), request.param, file_labels())
    return path


def picked_labels(n=30, seed=1):
    """Labels in shuffled order, from the first 70 rows only (the rest are 'extra' cells)."""
    labels = np.array(file_labels()[:70])
    return list(labels[np.random.default_rng(seed).permutation(70)[:n]])


def test_subset_equals_anndata_load_and_index(tmp_path, matrix_file):
    picked = picked_labels()
    cells = write_cells_csv(tmp_path / "cells.csv", picked)
    out = tmp_path / "subsets" / "WMB-10Xv3-TH.h5ad"
    stats = subset_local_file(matrix_file, tmp_path / "cells.csv", out, "WMB-10Xv3-TH", max_nnz=7)

    mine = cells.loc[cells.feature_matrix_label == "WMB-10Xv3-TH", "cell_label"].tolist()
    whole = ad.read_h5ad(matrix_file)
    expected = whole[mine].copy()
    got = ad.read_h5ad(out)
    assert_same_csr(got.X, expected.X)
    assert list(got.obs.index) == mine and got.obs.index.name == "cell_label"
    pd.testing.assert_frame_equal(got.obs, expected.obs, check_categorical=False)
    assert got.var.index.name == "gene_identifier"
    assert got.var.index.equals(whole.var.index)
    assert list(got.var["gene_symbol"]) == list(whole.var["gene_symbol"])
    assert got.uns["source_file"] == "WMB-10Xv3-TH-raw.h5ad"
    assert got.uns["matrix"] == "WMB-10Xv3-TH"
    assert (stats.rows, stats.nnz) == (30, expected.X.nnz)
    assert stats.bytes_read == expected.X.nnz * 8


def test_integer_counts_keep_their_dtype(tmp_path):
    path = tmp_path / "m.h5ad"
    write_h5ad(path, random_csr(N_FILE, 9, np.int32, seed=12), "anndata", file_labels())
    cells = write_cells_csv(tmp_path / "cells.csv", picked_labels(12, seed=2))
    mine = cells.loc[cells.feature_matrix_label == "WMB-10Xv3-TH", "cell_label"].tolist()
    out = tmp_path / "s.h5ad"
    subset_local_file(path, tmp_path / "cells.csv", out, "WMB-10Xv3-TH")
    got = ad.read_h5ad(out)
    assert got.X.dtype == np.int32
    assert_same_csr(got.X, ad.read_h5ad(path)[mine].X)


def test_missing_cell_names_cell_and_file_and_writes_nothing(tmp_path, matrix_file):
    write_cells_csv(tmp_path / "cells.csv", picked_labels(5) + ["GHOST-1"])
    out = tmp_path / "s.h5ad"
    with pytest.raises(AbcError, match=r"'GHOST-1' missing from WMB-10Xv3-TH-raw\.h5ad"):
        subset_local_file(matrix_file, tmp_path / "cells.csv", out, "WMB-10Xv3-TH")
    assert list(tmp_path.glob("*s.h5ad*")) == []


def test_many_missing_cells_are_counted_not_all_listed(tmp_path, matrix_file):
    write_cells_csv(tmp_path / "cells.csv", [f"ghost-{i}" for i in range(9)])
    with pytest.raises(AbcError, match="and 4 more") as err:
        subset_local_file(matrix_file, tmp_path / "cells.csv", tmp_path / "s.h5ad", "WMB-10Xv3-TH")
    assert "\n" not in str(err.value)


def test_truncated_matrix_is_a_one_line_error(tmp_path, matrix_file):
    data = matrix_file.read_bytes()
    matrix_file.write_bytes(data[: len(data) // 2])
    write_cells_csv(tmp_path / "cells.csv", picked_labels(5))
    with pytest.raises(AbcError, match="truncated or corrupt; delete it and rerun"):
        subset_local_file(matrix_file, tmp_path / "cells.csv", tmp_path / "s.h5ad", "WMB-10Xv3-TH")
    assert not (tmp_path / "s.h5ad").exists()


def test_labels_for_matrix_keeps_csv_order_and_refuses_duplicates(tmp_path):
    table = write_cells_csv(tmp_path / "cells.csv", ["b", "a", "c"])
    mine = table.loc[table.feature_matrix_label == "WMB-10Xv3-TH", "cell_label"].tolist()
    assert list(labels_for_matrix(tmp_path / "cells.csv", "WMB-10Xv3-TH")) == mine
    write_cells_csv(tmp_path / "dup.csv", ["a", "b", "a"])
    with pytest.raises(AbcError, match="more than once"):
        labels_for_matrix(tmp_path / "dup.csv", "WMB-10Xv3-TH")
    pd.DataFrame({"cell_label": ["a"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(AbcError, match="lacks a column"):
        labels_for_matrix(tmp_path / "bad.csv", "WMB-10Xv3-TH")


def test_a_matrix_with_no_sampled_cells_gives_an_empty_subset(tmp_path, matrix_file):
    write_cells_csv(tmp_path / "cells.csv", [])
    out = tmp_path / "s.h5ad"
    subset_local_file(matrix_file, tmp_path / "cells.csv", out, "WMB-10Xv3-TH")
    got = ad.read_h5ad(out)
    assert got.shape == (0, 25)


def run_rule(workdir: Path, rule: str, script: str) -> subprocess.CompletedProcess:
    """Run the real snakemake CLI on a one-rule Snakefile using the project's rule script."""
    if "ABC" in rule:  # a rule reading cached files: the matrix by its receipt
        receipts_for(workdir, *(p.name for p in workdir.glob("*-raw.h5ad")))
        rule = rule.replace("ABC", repr(local_abc(workdir)))
    snakefile = workdir / "Snakefile"
    snakefile.write_text(textwrap.dedent(rule).replace("SCRIPT", str(PROJECT / "scripts" / script)))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "-c1"],
        capture_output=True,
        text=True,
        timeout=300,
    )


SUBSET_RULE = """
config["abc"] = ABC
rule subset_matrix:
    input: matrix="receipts/WMB-10Xv3-TH-raw.h5ad.json", cells="cells.csv"
    output: h5ad="subsets/WMB-10Xv3-TH.h5ad", done="done/WMB-10Xv3-TH.abc.json"
    params:
        matrix="WMB-10Xv3-TH",
        settings={"variant": "raw"},
    log: "logs/subset.log"
    script: "SCRIPT"
"""


def test_rule_script_under_snakemake(tmp_path):
    write_h5ad(tmp_path / "WMB-10Xv3-TH-raw.h5ad", random_csr(N_FILE, 5, np.float32, 13),
               "contiguous", file_labels())  # fmt: skip
    picked = picked_labels(20, seed=3)
    write_cells_csv(tmp_path / "cells.csv", picked)
    result = run_rule(tmp_path, SUBSET_RULE, "subset_matrix.py")
    assert result.returncode == 0, result.stderr[-2000:]
    got = ad.read_h5ad(tmp_path / "subsets" / "WMB-10Xv3-TH.h5ad")
    assert set(got.obs.index) == set(picked)
    assert "20 rows" in (tmp_path / "logs" / "subset.log").read_text()


def test_rule_script_reports_a_missing_cell_in_one_line(tmp_path):
    write_h5ad(tmp_path / "WMB-10Xv3-TH-raw.h5ad", random_csr(N_FILE, 5, np.float32, 14),
               "contiguous", file_labels())  # fmt: skip
    write_cells_csv(tmp_path / "cells.csv", ["GHOST-2"])
    result = run_rule(tmp_path, SUBSET_RULE, "subset_matrix.py")
    assert result.returncode != 0
    log = (tmp_path / "logs" / "subset.log").read_text()
    assert "error: cell 'GHOST-2' missing from WMB-10Xv3-TH-raw.h5ad" in log
    assert "Traceback" not in log
    assert not (tmp_path / "subsets" / "WMB-10Xv3-TH.h5ad").exists()
    with h5py.File(tmp_path / "WMB-10Xv3-TH-raw.h5ad") as f:  # input left alone
        assert f["X"].attrs["shape"][0] == N_FILE


def test_a_subset_jobs_summary_line_is_read_back_in_every_mode(tmp_path):
    """A subset job's last log line (``SubsetStats.summary``) says how it read its matrix:
    the report's cards and the benchmarks read it back, a stream job's "(stream: X MB of
    rows)" too (bench_plan stopped on it with an IndexError, bench_link_run missed it)."""
    sys.path.insert(0, str(PROJECT / "benchmarks"))
    import bench_link_run
    import bench_plan

    from abc_downsample.report import landing
    from abc_downsample.subset.local import SubsetStats, parse_summary

    jobs = {
        "A": SubsetStats(10, 99, 1_250_500_000, "stream", row_bytes=1_000_500_000,
                         seconds=12.5, waited=3.25),
        "B": SubsetStats(20, 40, 900_000, "download", seconds=1.5, waited=0.75),
        "C": SubsetStats(30, 50, 3_000_000, seconds=0.25),
    }  # fmt: skip
    logs = tmp_path / "data" / "logs" / "subset_matrix"
    logs.mkdir(parents=True)
    fetched = "x INFO stream A: fetched 1,250.5 MB (1,250,500,000 bytes) in 7 requests: ...\n"
    for matrix, stats in jobs.items():
        before = fetched if stats.transfer == "stream" else ""
        (logs / f"{matrix}.log").write_text(f"{before}x INFO {stats.summary(matrix)}\n")
        assert parse_summary(f"x INFO {stats.summary(matrix)}\n") == stats  # one parser
    assert parse_summary("x INFO no summary\n") is None

    assert landing.transfers(tmp_path / "data" / "logs", list(jobs)) == {
        "stream": [(1_250_500_000, 1_000_500_000)], "download": [(900_000, 900_000)],
        "cache": [(3_000_000, 3_000_000)]}  # fmt: skip
    assert bench_plan.measured(tmp_path, {"B": 900_000}) == {
        "A": {"how": "stream", "bytes": 1_250_500_000, "seconds": 3.25, "job_seconds": 12.5},
        "B": {"how": "download", "bytes": 900_000, "seconds": 0.75, "job_seconds": 1.5},
        "C": {"how": "cache", "bytes": 0, "seconds": 0.0, "job_seconds": 0.25},
    }
    per_file = bench_link_run.subset_figures(logs)["per_file"]
    assert per_file == {"done by stream": 1, "done by download": 1, "done by cache": 1}
