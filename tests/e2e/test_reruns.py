"""Reruns a scientist can trust (issue 11): a changed setting on existing outputs rebuilds
what it affects, the provenance stays true, and nothing cached is fetched again.

Every test runs the real snakemake against moto's S3 server behind our counting proxy, on
a bucket of its own (some tests publish a new release into it).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import pandas as pd
import yaml
from conftest import PROJECT, RESULT, clean_env, run_snakemake, snakemake_ok
from s3_server import free_port, signed_client

CELLS = "data/downsampled_cells.csv"


def config_for(endpoint: str, **abc) -> dict:
    return {
        "abc": {"release": "20250531", "endpoint_url": endpoint, "cache_dir": "abc_data",
                "transfer": "download", **abc},  # fmt: skip
        "sampling": {"target_cells": 600, "min_cluster_size": 20},
    }


def provenance(workdir) -> dict:
    return ad.read_h5ad(Path(workdir) / RESULT, backed="r").uns["abc_downsample"]


def data_bytes(proxy, release) -> int:
    """Body bytes served for the release's data files (everything but manifests)."""
    return sum(proxy.bytes_of(key) for key in release["files"])


def assert_complete(workdir):
    """Every subset the sample needs exists, and the result holds exactly the sample."""
    cells = pd.read_csv(Path(workdir) / CELLS)
    for matrix in cells["feature_matrix_label"].unique():
        assert (Path(workdir) / "data" / "subsets" / f"{matrix}.h5ad").is_file(), matrix
    result = ad.read_h5ad(Path(workdir) / RESULT, backed="r")
    assert sorted(result.obs_names) == sorted(cells["cell_label"])


def test_changed_release_rebuilds_without_downloading_again(tmp_path, own_bucket):
    proxy, release = own_bucket["proxy"], own_bucket["release"]
    config = config_for(proxy.url)
    snakemake_ok(tmp_path, config=config)
    assert provenance(tmp_path)["release"] == "20250531"
    served = data_bytes(proxy, release)

    config["abc"]["release"] = release["old_release"]  # the same files, an older manifest
    output = snakemake_ok(tmp_path, config=config)
    assert "Nothing to be done" not in output
    assert provenance(tmp_path)["release"] == release["old_release"]
    assert data_bytes(proxy, release) == served, "cached files were downloaded again"
    assert_complete(tmp_path)


def test_latest_follows_a_new_release_and_is_resolved_once(tmp_path, own_bucket):
    proxy, release = own_bucket["proxy"], own_bucket["release"]
    config = config_for(proxy.url, release="latest")
    snakemake_ok(tmp_path, config=config)
    assert provenance(tmp_path)["release"] == "20250531"
    assert (tmp_path / "data/.abc/latest_release").read_text().strip() == "20250531"

    root = Path(release["root"])
    newer = json.loads((root / release["manifest"]).read_text())
    newer["version"] = "20261101"
    signed_client(own_bucket["server"].url).put_object(
        Bucket="allen-brain-cell-atlas",
        Key="releases/20261101/manifest.json",
        Body=json.dumps(newer).encode(),
        ACL="public-read",
    )
    try:
        served, lists = data_bytes(proxy, release), proxy.lists
        output = snakemake_ok(tmp_path, config=config)
        assert "abc.release latest is 20261101" in output
        assert proxy.lists == lists + 1, "the run listed the bucket more than once"
        assert provenance(tmp_path)["release"] == "20261101"
        assert data_bytes(proxy, release) == served
        assert_complete(tmp_path)

        # offline: the release the last run resolved, said so, and nothing to redo
        offline = config_for(f"http://127.0.0.1:{free_port()}", release="latest")
        output = snakemake_ok(tmp_path, config=offline)
        assert "using 20261101, the last one seen" in output
        assert "Nothing to be done" in output
    finally:
        signed_client(own_bucket["server"].url).delete_object(
            Bucket="allen-brain-cell-atlas", Key="releases/20261101/manifest.json"
        )


def test_cells_file_content_decides_and_a_missing_one_is_an_error(tmp_path, own_bucket):
    proxy = own_bucket["proxy"]
    first = tmp_path / "first"
    snakemake_ok(first, config=config_for(proxy.url))
    picked = pd.read_csv(first / CELLS)
    given = tmp_path / "given.csv"
    picked.iloc[:300][["cell_label"]].to_csv(given, index=False)
    config = config_for(proxy.url)
    config["sampling"]["cells_file"] = str(given)
    work = tmp_path / "work"
    snakemake_ok(work, config=config)
    assert len(ad.read_h5ad(work / RESULT, backed="r")) == 300

    picked.iloc[:200][["cell_label"]].to_csv(given, index=False)  # same name, new content
    snakemake_ok(work, config=config)
    assert len(ad.read_h5ad(work / RESULT, backed="r")) == 200
    assert_complete(work)

    config["sampling"]["cells_file"] = str(tmp_path / "absent.csv")
    result = run_snakemake(work, config=config)
    assert result.returncode != 0
    last = (result.stdout + result.stderr).strip().splitlines()[-1]
    assert "sampling.cells_file" in last and "absent.csv" in last and "does not exist" in last


def test_offline_rerun_after_a_code_change(tmp_path, own_bucket):
    """A fresh clone or a `git pull` changes the workflow's code: Snakemake reruns the
    download jobs, which must take the cached files (and manifest), not the network."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for part in ("Snakefile", "workflow", "scripts", "config", "envs"):
        copy = shutil.copytree if (PROJECT / part).is_dir() else shutil.copy2
        copy(PROJECT / part, clone / part)
    work = tmp_path / "work"
    cache = tmp_path / "shared_cache"
    config = config_for(own_bucket["proxy"].url, cache_dir=str(cache))
    config_file = tmp_path / "config.yaml"
    ok_clone(clone, work, config, config_file)
    script = clone / "scripts" / "download_metadata.py"
    script.write_text(script.read_text() + "\n# a change a git pull brings\n")
    shutil.rmtree(work / "data" / ".abc" / "releases")  # and a fresh project copy
    offline = config_for(f"http://127.0.0.1:{free_port()}", cache_dir=str(cache))
    output = ok_clone(clone, work, offline, config_file)
    assert "rule download_metadata:" in output, "the changed rule should rerun"
    assert_complete(work)


def ok_clone(clone, work, config, config_file) -> str:
    """Like ``ok``, with the Snakefile of ``clone``."""
    config_file.write_text(yaml.safe_dump(config))
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(clone / "Snakefile"),
        "--directory", str(work), "--cores", "2", "--configfile", str(config_file),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output
