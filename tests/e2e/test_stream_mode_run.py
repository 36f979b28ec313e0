"""Stream mode under the real snakemake: the same result as download mode, no matrix on
disk."""

from h5_compare import h5_differences
from s3_server import BUCKET


def test_workflow_in_stream_mode_matches_download_mode(tmp_path, s3_endpoint):
    """The real snakemake command, both modes, same config otherwise: same final file."""
    from conftest import run_snakemake

    config = {
        "abc": {"bucket": BUCKET, "endpoint_url": s3_endpoint, "cache_dir": "abc_data"},
        "sampling": {"target_cells": 1500, "min_cluster_size": 50},
    }
    results = {}
    for transfer in ("download", "stream"):
        config["abc"]["transfer"] = transfer
        workdir = tmp_path / transfer
        run = run_snakemake(workdir, "--show-failed-logs", config=config)
        assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
        results[transfer] = workdir
    final = "data/downsampled_expression.h5ad"
    differ = h5_differences(results["download"] / final, results["stream"] / final)
    assert differ == []
    stream_dir = results["stream"]
    assert not (stream_dir / "abc_data" / "expression_matrices").exists()
    logs = list((stream_dir / "data").rglob("subset_matrix/*.log"))
    assert logs and all("MB of the selected rows" in log.read_text() for log in logs)
