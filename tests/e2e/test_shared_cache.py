"""One cache, many projects, files verified once (issue 12): the real snakemake against
moto's S3 server behind our counting proxy, on a bucket of this module's own."""

import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import pandas as pd
import yaml
from conftest import PROJECT, RESULT, clean_env, md5, snakefile
from synthetic_paths import CELLS


def start(workdir: Path, config: dict) -> subprocess.Popen:
    """snakemake in the background, its output in workdir/run.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(snakefile()),
        "--directory", str(workdir), "--cores", "1",
        "--configfile", str(PROJECT / "config" / "config.yaml"), str(workdir / "config.yaml"),
    ]  # fmt: skip
    log = open(workdir / "run.log", "w")  # noqa: SIM115 closed by the child's exit
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=clean_env())


def finish(process: subprocess.Popen, workdir: Path, timeout: float = 400) -> None:
    assert process.wait(timeout=timeout) == 0, (workdir / "run.log").read_text()[-4000:]


def config_for(endpoint: str, cache: Path, **sampling) -> dict:
    return {
        "abc": {"release": "20250531", "endpoint_url": endpoint, "cache_dir": str(cache),
                "transfer": "download"},  # fmt: skip
        "sampling": {"target_cells": 600, "min_cluster_size": 20, **sampling},
    }


def test_three_projects_share_one_cache_and_fetch_each_file_once(tmp_path, own_bucket):
    proxy, release = own_bucket["proxy"], own_bucket["release"]
    proxy.reset()
    cache = tmp_path / "shared_cache"
    seeds = (1, 2, 3)  # different samples, overlapping matrix files
    runs = []
    for i, seed in enumerate(seeds):
        workdir = tmp_path / f"project{i}"
        runs.append((start(workdir, config_for(proxy.url, cache, seed=seed)), workdir))
        time.sleep(4)  # staggered: later projects find files in flight or done
    for process, workdir in runs:
        finish(process, workdir)
    fetched = {key: proxy.bytes_of(key) for key in release["files"]}
    for key, n in fetched.items():
        if n:
            assert n == release["files"][key]["size"], f"{key} fetched {n} bytes"
            assert md5(cache / key) == release["files"][key]["md5"], key
    assert sum(1 for n in fetched.values() if n) >= 6
    for _, workdir in runs:
        cells = pd.read_csv(workdir / "data" / "downsampled_cells.csv")
        assert sorted(ad.read_h5ad(workdir / RESULT, backed="r").obs_names) == sorted(
            cells["cell_label"]
        )


def test_changed_metadata_table_in_the_cache_is_downloaded_again(tmp_path, own_bucket):
    """A cluster_alias edited in the cached cell table (same size) must not reach the
    result: its stamp no longer matches, its MD5 is read, and it is fetched again."""
    proxy, release = own_bucket["proxy"], own_bucket["release"]
    cache = tmp_path / "cache"
    workdir = tmp_path / "project"
    finish(start(workdir, config_for(proxy.url, cache)), workdir)
    table = cache / CELLS
    text = table.read_text()
    first = pd.read_csv(workdir / "data" / "downsampled_cells.csv").iloc[0]
    row_start = text.index("\n" + first["cell_label"] + ",") + 1
    row = text[row_start : text.index("\n", row_start)]
    alias = str(first["cluster_alias"])
    other = str(int(alias) % 9 + 1) * len(alias)  # same width: same size
    edited = row.replace("," + alias + ",", "," + other + ",", 1)
    assert edited != row and len(edited) == len(row)
    table.write_text(text[:row_start] + edited + text[row_start + len(row) :])
    served = proxy.bytes_of(CELLS)

    finish(start(workdir, config_for(proxy.url, cache, seed=7)), workdir)  # resample
    assert md5(table) == release["files"][CELLS]["md5"]
    assert proxy.bytes_of(CELLS) == served + release["files"][CELLS]["size"]
    obs = ad.read_h5ad(workdir / RESULT, backed="r").obs
    truth = pd.read_csv(Path(release["root"]) / CELLS).set_index("cell_label")
    aliases = obs["cluster_alias"].astype(str)
    assert (aliases == truth.loc[obs.index, "cluster_alias"].astype(str)).all()
