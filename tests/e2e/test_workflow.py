"""End to end: the real snakemake command against a moto S3 server holding a synthetic release.

Results are checked against an independent reading of the synthetic files (pandas + anndata),
not against our own modules.
"""

import re
import shutil
from collections import Counter
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import RESULT, md5, snakemake_ok
from s3_server import free_port
from synthetic_paths import CELLS, GENES, MEMBERSHIP, PIVOTED

TARGET = 1500
MIN_CLUSTER = 50
RELEASE = "20250531"
# the taxonomy the workflow reads (the long tables; the pivoted view is their pivot)
LEVELS = ["neurotransmitter", "class", "subclass", "supertype", "cluster"]


def workflow_config(endpoint_url: str, transfer: str = "download") -> dict:
    """These tests check whole matrices in the cache: download mode, unless they say."""
    return {
        "abc": {
            "release": RELEASE,
            "bucket": "allen-brain-cell-atlas",
            "endpoint_url": endpoint_url,
            "cache_dir": "abc_data",
            "transfer": transfer,
        },
        "sampling": {"target_cells": TARGET, "min_cluster_size": MIN_CLUSTER},
    }



def jobs_run(output: str) -> Counter:
    """Rule name -> number of jobs snakemake started, from its log lines."""
    names = re.findall(r"^(?:local)?(?:rule|checkpoint) ([\w]+):$", output, flags=re.M)
    return Counter(names)


@pytest.fixture(scope="module")
def source(synthetic_release):
    """The synthetic release read independently: cells, genes, taxonomy, matrices."""
    root = Path(synthetic_release["root"])
    return {
        "root": root,
        "cells": pd.read_csv(root / CELLS, keep_default_na=False).set_index("cell_label"),
        "genes": pd.read_csv(root / GENES, keep_default_na=False),
        "taxonomy": pd.read_csv(root / PIVOTED, keep_default_na=False).set_index("cluster_alias"),
        "matrices": {
            label: root / info["raw"] for label, info in synthetic_release["matrices"].items()
        },
    }


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, s3_endpoint):
    """One complete run in a fresh directory; later tests rerun it in place."""
    workdir = tmp_path_factory.mktemp("e2e_full")
    config = workflow_config(s3_endpoint)
    output = snakemake_ok(workdir, config=config)
    return {"workdir": workdir, "config": config, "output": output}


@pytest.fixture(scope="module")
def result(full_run):
    return ad.read_h5ad(full_run["workdir"] / RESULT)


def test_sample_has_the_target_size_and_every_rare_cluster_whole(result, source):
    cells = source["cells"]
    labels = result.obs.index
    assert len(labels) == TARGET and labels.is_unique
    assert set(labels) <= set(cells.index), "only cells of cell_metadata.csv"
    sizes = cells["cluster_alias"].value_counts()
    rare = set(cells.index[cells["cluster_alias"].map(sizes) < MIN_CLUSTER])
    assert rare and rare <= set(labels), "every cell of the rare clusters"
    sampled = cells.loc[labels, "cluster_alias"].value_counts()
    assert set(sampled.index) == set(sizes.index), "every cluster represented"
    assert (sampled <= sizes[sampled.index]).all()


def test_rows_are_the_source_rows_of_each_cell(result, source):
    cells = source["cells"]
    matrix_of = cells.loc[result.obs.index, "feature_matrix_label"]
    for label, path in source["matrices"].items():
        mine = matrix_of.index[matrix_of == label]
        if len(mine) == 0:
            continue
        src = ad.read_h5ad(path)
        assert result.X.dtype == src.X.dtype
        got = result[mine].X.toarray()
        np.testing.assert_array_equal(got, src[mine].X.toarray(), err_msg=label)
    assert (np.diff(result.X.indptr) > 0).any()


def test_obs_is_grouped_by_matrix_in_sorted_order(result, source):
    matrices = source["cells"].loc[result.obs.index, "feature_matrix_label"].to_numpy()
    boundaries = [m for i, m in enumerate(matrices) if i == 0 or m != matrices[i - 1]]
    assert boundaries == sorted(set(matrices)), "one block per matrix, labels sorted"


def test_obs_has_metadata_and_taxonomy_with_the_literal_na(result, source):
    obs = result.obs
    assert obs.index.name == "cell_label"
    expected = source["cells"].loc[obs.index]
    for column in expected.columns:
        assert column in obs.columns, column
        if column in ("x", "y"):
            np.testing.assert_allclose(obs[column].astype(float), expected[column])
        else:  # an empty field may come back as missing
            got = obs[column].astype(object).where(obs[column].notna(), "").astype(str)
            assert (got == expected[column].astype(str)).all(), column
    taxonomy = source["taxonomy"].loc[expected["cluster_alias"]]
    for level in LEVELS:
        assert (obs[level].astype(str).to_numpy() == taxonomy[level].to_numpy()).all(), level
    na_cells = taxonomy["neurotransmitter"].to_numpy() == "NA"
    assert na_cells.any(), "the sample has cells whose neurotransmitter term is NA"
    assert (obs["neurotransmitter"][na_cells].astype(str) == "NA").all()


def test_var_and_provenance(result, source):
    genes = source["genes"]
    assert result.var.index.name == "gene_identifier"
    assert list(result.var.index) == list(genes["gene_identifier"])
    assert list(result.var["gene_symbol"]) == list(genes["gene_symbol"])
    provenance = result.uns["abc_downsample"]
    assert provenance["release"] == RELEASE
    assert provenance["variant"] == "raw"


def test_cache_has_the_abc_atlas_access_layout(full_run, synthetic_release):
    cache = full_run["workdir"] / "abc_data"
    files = synthetic_release["files"]
    assert (cache / "releases" / RELEASE / "manifest.json").is_file()
    cached = {
        p.relative_to(cache).as_posix()
        for p in cache.rglob("*")
        if p.is_file()
        and not p.relative_to(cache).as_posix().startswith(("releases/", ".abc_downsample/"))
    }
    # Download lock files may stay next to the files they guarded; nothing else may.
    locks = {path for path in cached if path.endswith(".lock")}
    assert {path.removesuffix(".lock") for path in locks} <= cached
    cached -= locks
    assert {CELLS, MEMBERSHIP} <= cached
    assert cached <= set(files), f"stray files in the cache: {sorted(cached - set(files))}"
    assert any(path.startswith("expression_matrices/") for path in cached)
    for path in cached:
        assert md5(cache / path) == files[path]["md5"], path


def test_second_run_does_nothing(full_run):
    output = snakemake_ok(full_run["workdir"], config=full_run["config"])
    assert "Nothing to be done" in output
    assert not jobs_run(output) - Counter({"all": 1})


def test_deleted_subset_rebuilds_only_it_and_the_result(full_run):
    """The subsets are targets of `rule all`, so a plain rerun rebuilds a deleted one, then
    the result (and the report pages that read the result and its benchmark), nothing else."""
    workdir = full_run["workdir"]
    subsets = sorted((workdir / "data" / "subsets").glob("*.h5ad"))
    assert len(subsets) >= 2
    victim, others = subsets[-1], subsets[:-1]
    before = {p: p.stat().st_mtime_ns for p in others}
    result_before = (workdir / RESULT).stat().st_mtime_ns
    victim.unlink()
    output = snakemake_ok(workdir, config=full_run["config"])
    ran = jobs_run(output)
    ran.pop("all", None)
    ran.pop("plot_runtime", None)
    ran.pop("report_landing", None)
    assert ran == Counter({"subset_matrix": 1, "concat": 1}), ran
    assert victim.exists()
    assert {p: p.stat().st_mtime_ns for p in others} == before
    assert (workdir / RESULT).stat().st_mtime_ns > result_before


def test_concat_reads_the_sample_rows_not_the_cell_table(full_run):
    """The cell table is read once per run, by sample_cells: concat, rerun with the cached
    cell table gone and no way to fetch it again, still makes the same result."""
    workdir = full_run["workdir"]
    cached = workdir / "abc_data" / CELLS
    aside = cached.with_name("aside.csv")
    first = ad.read_h5ad(workdir / RESULT)
    (workdir / RESULT).unlink()
    config = {**full_run["config"], "abc": {**full_run["config"]["abc"],
              "endpoint_url": f"http://127.0.0.1:{free_port()}"}}  # fmt: skip
    cached.rename(aside)
    try:
        output = snakemake_ok(workdir, config=config)
    finally:
        aside.rename(cached)
    ran = jobs_run(output)
    assert ran["concat"] == 1 and "sample_cells" not in ran, ran
    again = ad.read_h5ad(workdir / RESULT)
    pd.testing.assert_frame_equal(again.obs, first.obs)


def test_partial_target_runs_only_what_it_needs(tmp_path, s3_endpoint, full_run):
    subsets = sorted((full_run["workdir"] / "data" / "subsets").glob("*.h5ad"))
    target = f"data/subsets/{subsets[0].name}"
    output = snakemake_ok(tmp_path, target, config=workflow_config(s3_endpoint))
    ran = jobs_run(output)
    # one job per matrix: the subset job downloads its matrix into the cache itself
    assert ran["subset_matrix"] == 1 and "download_matrix" not in ran, ran
    assert "concat" not in ran
    assert (tmp_path / target).is_file()
    assert not (tmp_path / RESULT).exists()
    matrices = list((tmp_path / "abc_data" / "expression_matrices").rglob("*.h5ad"))
    assert [m.name for m in matrices] == [subsets[0].stem + "-raw.h5ad"]
    same = ad.read_h5ad(tmp_path / target)
    first = ad.read_h5ad(subsets[0])
    assert list(same.obs.index) == list(first.obs.index)
    assert (same.X != first.X).nnz == 0


def test_prefilled_cache_is_used_without_any_download(tmp_path, synthetic_release, full_run):
    """A cache filled by abc_atlas_access, an unreachable endpoint: nothing is fetched."""
    root, cache = Path(synthetic_release["root"]), tmp_path / "abc_data"
    copied = [synthetic_release["manifest"], *synthetic_release["files"]]
    for relative in copied:
        (cache / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, cache / relative)
    (cache / "_manifest_last_used.txt").write_text(RELEASE)
    (cache / "_downloaded_data.json").write_text(
        "[" + ", ".join(f'"{(cache / r).as_posix()}"' for r in copied) + "]"
    )
    unreachable = f"http://127.0.0.1:{free_port()}"
    # auto (the default) uses the copies in the cache: nothing fetched, no network needed
    output = snakemake_ok(tmp_path, config=workflow_config(unreachable, transfer="auto"))
    assert "download_matrix" not in jobs_run(output)
    again = ad.read_h5ad(tmp_path / RESULT)
    first = ad.read_h5ad(full_run["workdir"] / RESULT)
    assert list(again.obs.index) == list(first.obs.index), "same config, same sample"
    for relative in copied:
        assert md5(cache / relative) == md5(root / relative), f"{relative} was modified"


def test_default_auto_plans_each_matrix_and_gives_download_modes_result(
    tmp_path, s3_endpoint, full_run
):
    """The default transfer on an empty cache: each subset job logs its plan and streams or
    downloads; the result is the one download mode made (full_run)."""
    config = workflow_config(s3_endpoint)
    del config["abc"]["transfer"]
    snakemake_ok(tmp_path, config=config)
    logs = [p.read_text() for p in (tmp_path / "data" / "logs" / "subset_matrix").iterdir()]
    assert len(logs) == len(list((full_run["workdir"] / "data" / "subsets").glob("*.h5ad")))
    for log in logs:
        assert re.search(r"auto \S+: stream .* vs download .*: (stream|download)$", log, re.M), log
    got, want = ad.read_h5ad(tmp_path / RESULT), ad.read_h5ad(full_run["workdir"] / RESULT)
    assert list(got.obs.index) == list(want.obs.index)
    assert (got.X != want.X).nnz == 0
    pd.testing.assert_frame_equal(got.obs, want.obs)


def test_keep_matrices_false_leaves_no_matrix_behind(tmp_path, s3_endpoint, full_run):
    target = (
        f"data/subsets/{sorted((full_run['workdir'] / 'data' / 'subsets').glob('*.h5ad'))[0].name}"
    )
    config = workflow_config(s3_endpoint)
    config["abc"]["keep_matrices"] = False
    output = snakemake_ok(tmp_path, target, config=config)
    assert jobs_run(output)["subset_matrix"] == 1
    assert (tmp_path / target).is_file()
    assert not list((tmp_path / "abc_data").rglob("*.h5ad")), "the matrix should be removed"


def test_damaged_cached_matrix_is_downloaded_again(tmp_path, s3_endpoint, full_run, source):
    """A truncated file and a same-size one with one flipped byte are both found (the
    stamp no longer matches, the MD5 is read again) and replaced, never used."""
    subset = sorted((full_run["workdir"] / "data" / "subsets").glob("*.h5ad"))[0]
    target = f"data/subsets/{subset.name}"
    config = workflow_config(s3_endpoint)
    snakemake_ok(tmp_path, target, config=config)
    (matrix,) = (tmp_path / "abc_data" / "expression_matrices").rglob("*.h5ad")
    good = md5(matrix)
    for damage in ("truncate", "flip"):
        with open(matrix, "r+b") as fh:
            if damage == "truncate":
                fh.truncate(matrix.stat().st_size // 2)
            else:
                fh.seek(matrix.stat().st_size // 2)
                byte = fh.read(1)
                fh.seek(-1, 1)
                fh.write(bytes([byte[0] ^ 0xFF]))
        (tmp_path / target).unlink()
        snakemake_ok(tmp_path, target, config=config)
        assert md5(matrix) == good, damage
        same = ad.read_h5ad(tmp_path / target)
        src = ad.read_h5ad(source["matrices"][subset.stem])
        np.testing.assert_array_equal(same.X.toarray(), src[same.obs_names].X.toarray())
