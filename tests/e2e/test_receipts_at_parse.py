"""Metadata tables the cache holds verified need no download job (issue 25): the main
Snakemake process writes their receipts while it reads the workflow (a stat each), so no
process per table stands before sampling; a table with no stamp is still checked by a job."""

import re
import shutil

from conftest import run_snakemake

from abc_downsample.cache.layout import STATE_DIR

TARGET = "data/downsampled_cells.csv"


def config(release: dict, cache) -> dict:
    return {
        "abc": {"release": "20250531", "bucket": str(release["root"]), "cache_dir": str(cache),
                "endpoint_url": None},  # fmt: skip
        "sampling": {"target_cells": 600, "min_cluster_size": 20},
    }


def planned_jobs(result) -> set[str]:
    """The rules of the run's job stats tables."""
    assert result.returncode == 0, result.stderr[-3000:]
    return set(re.findall(r"^(\w+)\s+\d+$", result.stdout + result.stderr, re.M)) - {"total"}


def test_verified_metadata_starts_no_download_job(tmp_path, synthetic_release):
    cache = tmp_path / "cache"
    first = run_snakemake(tmp_path / "first", TARGET, config=config(synthetic_release, cache))
    assert "download_metadata" in planned_jobs(first), "an empty cache: the jobs fetch"

    again = tmp_path / "second"  # another project on the verified cache
    dry = run_snakemake(again, "-n", TARGET, config=config(synthetic_release, cache))
    assert "download_metadata" not in planned_jobs(dry)
    assert planned_jobs(dry) == {"sample_cells"}
    run = run_snakemake(again, TARGET, config=config(synthetic_release, cache))
    assert "download_metadata" not in planned_jobs(run)
    assert (again / TARGET).stat().st_size > 0


def test_unverified_metadata_is_still_checked_by_a_job(tmp_path, synthetic_release):
    cache = tmp_path / "cache"
    run_snakemake(tmp_path / "first", TARGET, config=config(synthetic_release, cache))
    shutil.rmtree(cache / STATE_DIR)  # as another tool leaves a filled cache: no stamps
    dry = run_snakemake(tmp_path / "second", "-n", TARGET, config=config(synthetic_release, cache))
    assert "download_metadata" in planned_jobs(dry)
