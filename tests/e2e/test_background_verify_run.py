"""First use of a cache another tool filled, under the real snakemake: sampling checks the
cached matrices (MD5, once each) while it samples; the subset jobs find them stamped."""

import re

from conftest import filled_cache, run_snakemake


def test_first_use_of_a_filled_cache_reads_each_matrix_once(tmp_path, synthetic_release):
    cache = filled_cache(synthetic_release, tmp_path / "cache")
    config = {
        "abc": {"release": "20250531", "bucket": str(synthetic_release["root"]),
                "cache_dir": str(cache), "endpoint_url": None},  # fmt: skip
        "sampling": {"target_cells": 600, "min_cluster_size": 20},
    }
    work = tmp_path / "project"
    result = run_snakemake(work, "data/downsampled_expression.h5ad", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    sample_log = (work / "data" / "logs" / "sample_cells.log").read_text()
    assert re.search(r"checked the MD5 of \d+ cached matrices", sample_log)
    subset_logs = list((work / "data" / "logs" / "subset_matrix").glob("*.log"))
    assert subset_logs
    for path in subset_logs:  # every matrix stamped before its job: a stat, no MD5 read
        text = path.read_text()
        assert "stamp matches" in text and "md5 checked" not in text, path.name
