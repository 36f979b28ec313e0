"""The datasets of the releases after 20250531, end to end: the real snakemake against a moto
S3 server holding a synthetic release with each in its real shape (``abc_downsample.demo``),
``abc.release: latest``, and no profile file: the profile is inferred from the release.
Results are checked against an independent reading of the synthetic files
(``newer_truth``: pandas and anndata, the notebooks' joins).

A dataset no profile and no code names (a copy of SEA-AD-CaH-10X under a new name, as a
future release could add one) is downsampled by inference alone.
"""

import json
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import RESULT, run_snakemake
from newer_truth import DATASETS, Where, read_truth, source_rows
from s3_server import MotoServer, reader_credentials, require_credentials, upload_tree

from abc_downsample.demo.common import file_facts, manifest_json
from abc_downsample.demo.release import write_release

LATEST = "20261031"
TARGET, MIN_CLUSTER = 400, 15
NOVEL, NOVEL_FROM = "Future-Cortex-10X", "SEA-AD-CaH-10X"
# everything named after the copied dataset, renamed (feature_matrix_labels are unique)
RENAMES = {NOVEL_FROM: NOVEL, "SEA-AD-CaH-taxonomy": "Future-Cortex-taxonomy",
           "CaH-10X": "Future-10X"}  # fmt: skip


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Every newer dataset, and the novel one, in releases up to 20261031, on moto."""
    root = tmp_path_factory.mktemp("newer") / "bucket"
    write_release(root, release=LATEST, n_cells=900, n_genes=24, datasets=tuple(DATASETS))
    add_novel_dataset(root, LATEST)
    server = MotoServer()
    upload_tree(server.url, root)
    yield {"root": root, "url": server.url}
    server.stop()


def add_novel_dataset(root: Path, release: str) -> None:
    """A copy of SEA-AD-CaH-10X named Future-Cortex-10X (its directories, matrix, cell
    table and taxonomy renamed), listed in the release's manifest."""
    path = root / "releases" / release / "manifest.json"
    listing = json.loads(path.read_text())["file_listing"]
    keys = []
    for directory in list(RENAMES)[:2]:
        for kind in listing[directory].values():
            for node in kind.values():
                for entry in _entries(node):
                    keys.append(_renamed(entry["relative_path"]))
                    _copy_renamed(root / entry["relative_path"], root / keys[-1])
    DATASETS[NOVEL] = Where(NOVEL, "Future-Cortex-taxonomy", (NOVEL, "gene"),
                            DATASETS[NOVEL_FROM].levels)  # fmt: skip
    listed = [e["relative_path"] for d in listing.values() for k in d.values()
              for n in k.values() for e in _entries(n)]  # fmt: skip
    facts = {key: file_facts(root / key) for key in listed + keys}
    path.write_bytes(manifest_json(release, facts))


def _entries(node: dict) -> list[dict]:
    if "files" in node:
        return list(node["files"].values())
    return [e for sub in node.values() for e in sub["files"].values()]


def _renamed(text: str) -> str:
    for old, new in RENAMES.items():
        text = text.replace(old, new)
    return text


def _copy_renamed(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.name == "cell_metadata.csv":  # each cell names its matrix and its directory
        dest.write_text(_renamed(source.read_text()))
    else:
        shutil.copy(source, dest)


def config_for(release, name: str, **sampling) -> dict:
    return {
        "abc": {"dataset": name, "release": "latest", "bucket": "allen-brain-cell-atlas",
                "endpoint_url": release["url"], "cache_dir": "abc_data"},
        "sampling": {"target_cells": TARGET, "min_cluster_size": MIN_CLUSTER, **sampling},
    }  # fmt: skip


@pytest.fixture(scope="module", params=[*DATASETS, NOVEL])
def run(request, release, tmp_path_factory):
    """One snakemake run of a dataset, and the independent reading of its files."""
    name = request.param
    if name not in DATASETS:
        pytest.skip(f"{name} is added by the release fixture")
    workdir = tmp_path_factory.mktemp(f"run-{name}")
    result = run_snakemake(workdir, "--show-failed-logs", config=config_for(release, name))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return {"name": name, "output": output, "workdir": workdir,
            "truth": read_truth(release["root"], name, LATEST),
            "result": ad.read_h5ad(workdir / RESULT)}  # fmt: skip


def test_the_profile_is_inferred_and_printed_once(run):
    assert f"abc.dataset {run['name']}: profile inferred from release" in run["output"]
    saved = run["workdir"] / "data" / ".abc" / "releases" / LATEST / "profiles"
    assert (saved / f"{run['name']}.yaml").is_file()
    assert "abc.release latest is 20261031" in run["output"]


def test_the_sample_is_of_assigned_cells_rare_groups_whole(run):
    obs, truth = run["result"].obs, run["truth"]
    assigned = truth.assigned
    assert len(obs) == min(TARGET, len(assigned)) and obs.index.is_unique
    assert set(obs.index) <= set(assigned.index), "cells without a cluster are left out"
    sizes = assigned["cluster_alias"].value_counts()
    rare = set(assigned.index[assigned["cluster_alias"].map(sizes) < MIN_CLUSTER])
    assert rare and rare <= set(obs.index)
    population = run["result"].uns["abc_downsample"]["population"]
    assert population["without_group"] == len(truth.unassigned)
    assert population["cells"] == len(truth.cells)


def test_groups_levels_and_annotations_are_the_taxonomy_s(run):
    obs, truth = run["result"].obs, run["truth"]
    expected = truth.expected_obs().loc[obs.index]
    for column in ["cluster_alias", *truth.levels, *truth.annotations]:
        got = obs[column].astype(object).where(obs[column].notna(), "").astype(str)
        assert (got.to_numpy() == expected[column].fillna("").to_numpy()).all(), column


def test_colours_are_the_term_table_s(run):
    obs, uns, truth = run["result"].obs, run["result"].uns, run["truth"]
    for level in truth.levels:
        categories = list(obs[level].cat.categories)
        assert list(uns[f"{level}_colors"]) == [truth.colors[level][t] for t in categories]


def test_umap_comes_from_the_embedding_table(run):
    obs, truth = run["result"].obs, run["truth"]
    np.testing.assert_allclose(run["result"].obsm["X_umap"], truth.xy.loc[obs.index])


def test_rows_are_the_source_rows_and_genes_the_matrices(run):
    result, truth = run["result"], run["truth"]
    source = source_rows(truth, result.obs.index)
    np.testing.assert_array_equal(result.X.toarray(), source.X.toarray())
    assert list(result.var.index) == list(source.var.index)
    assert list(result.var.index) == list(truth.genes["gene_identifier"])
    # the gene table's columns, another dataset's where a partial profile names it
    assert set(truth.genes.columns) - {"gene_identifier"} <= set(result.var.columns)


def test_unassigned_cells_can_be_kept_as_a_group(release, tmp_path):
    name = "SEA-AD-Multiregion-10X"
    config = config_for(release, name, unassigned="keep", target_cells=600)
    result = run_snakemake(tmp_path, "--show-failed-logs", config=config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    truth = read_truth(release["root"], name, LATEST)
    obs = ad.read_h5ad(tmp_path / RESULT).obs
    kept = obs.index[obs["cluster_alias"].astype(str) == "unassigned"]
    assert len(kept) and set(kept) <= set(truth.unassigned)
    assert obs.loc[kept, truth.levels].isna().all().all(), "no terms for them"
    summary = pd.read_csv(tmp_path / "data" / "sampling_summary.csv", dtype=str)
    assert "unassigned" in set(summary.iloc[:, 0])


def test_a_bucket_that_needs_credentials_is_read_with_them(release, tmp_path):
    """HMBA-10xMultiome-Subcortex is served from a bucket that needs credentials: the run
    signs its requests (abc.anonymous: false) with the keys of the AWS credential chain."""
    server = MotoServer()
    try:
        upload_tree(server.url, release["root"], public=False)
        keys = reader_credentials(server.url)
        require_credentials(server.url)
        name = "HMBA-10xMultiome-Subcortex"
        config = config_for({"url": server.url}, name)
        refused = run_snakemake(tmp_path / "anonymous", config=config, env=keys)
        assert refused.returncode != 0
        last = [line for line in refused.stderr.splitlines() if line.strip()][-1]
        assert last.startswith("abc-downsample: error:") and "abc.anonymous: false" in last
        config["abc"]["anonymous"] = False
        signed = run_snakemake(tmp_path / "signed", "--show-failed-logs", config=config, env=keys)
        assert signed.returncode == 0, (signed.stdout + signed.stderr)[-6000:]
    finally:
        server.stop()
    obs = ad.read_h5ad(tmp_path / "signed" / RESULT).obs
    truth = read_truth(release["root"], name, LATEST)
    assert len(obs) == min(TARGET, len(truth.assigned))


def test_wmb_10x_with_latest_reads_the_newest_release_s_directories(release, tmp_path):
    """release: latest (20261031) moved WMB-10X's metadata to a newer directory version:
    its profile names directories, not versions, so the run reads the new ones."""
    config = config_for(release, "WMB-10X", target_cells=300)
    result = run_snakemake(tmp_path, "--show-failed-logs", config=config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    uns = ad.read_h5ad(tmp_path / RESULT, backed="r").uns["abc_downsample"]
    assert uns["release"] == LATEST
    assert uns["directory_versions"]["WMB-10X"]["metadata"] == "20251031"
    receipts = tmp_path / "data" / ".abc" / "cached" / "metadata" / "WMB-10X"
    assert [p.name for p in receipts.iterdir()] == ["20251031"]
