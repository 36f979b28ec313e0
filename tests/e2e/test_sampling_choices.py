"""Issue 23 on the demo release with the real snakemake: a floor per group, coverage across
levels in the report, the web app's selection export and plain label lists as cell lists,
and sampling within a selection. Counts are redone here with pandas from the synthetic
release's own files, not with the workflow's modules."""

import re
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import ERROR, RESULT, moto_config, run_snakemake, snakemake_ok
from synthetic_paths import CELLS

CELL_LIST = "data/downsampled_cells.csv"
LEVELS = "data/sampling_levels.csv"
LANDING = "data/report/landing.html"


@pytest.fixture(scope="module")
def cells(synthetic_release) -> pd.DataFrame:
    return pd.read_csv(Path(synthetic_release["root"], CELLS), keep_default_na=False)


def page_text(path) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", Path(path).read_text()))


def rule_runs(output: str, rule: str) -> int:
    return len(re.findall(rf"^(?:local)?(?:rule|checkpoint) {rule}:$", output, flags=re.M))


# ---------------------------------------------------------------- a floor per group
def test_a_floor_per_group_holds_and_the_report_shows_no_term_under_it(
    tmp_path, s3_endpoint, cells
):
    floor, rare = 30, 10
    config = moto_config(s3_endpoint, target_cells=2500, min_cluster_size=rare,
                         min_cells_per_group=floor)  # fmt: skip
    snakemake_ok(tmp_path, config=config)
    sizes = cells["cluster_alias"].value_counts()
    kept = ad.read_h5ad(tmp_path / RESULT, backed="r").obs["cluster_alias"].astype(int)
    kept = kept.value_counts().reindex(sizes.index, fill_value=0)
    assert kept.sum() == 2500
    guaranteed = sizes.where(sizes < rare, np.minimum(sizes, floor))
    assert (kept >= guaranteed).all(), (kept - guaranteed).min()
    assert (kept[sizes < rare] == sizes[sizes < rare]).all()
    # the floor is what held them: without it, one fraction leaves many under it
    assert (np.floor(sizes[sizes >= rare] * 2334 / sizes[sizes >= rare].sum()) < floor).any()

    levels = pd.read_csv(tmp_path / LEVELS, keep_default_na=False)
    assert {"groups_below_floor", "smallest_group_before", "smallest_group_after"} <= set(
        levels.columns
    )
    assert (levels["groups_below_floor"] == 0).all()
    clusters = levels[levels["level"] == "cluster"]
    assert clusters["smallest_group_after"].min() == guaranteed.min()
    text = page_text(tmp_path / LANDING)
    assert f"Terms with a cluster under the floor (kept fewer than min(size, {floor}) cells" in text
    for level in levels["level"].unique():
        n = int((levels["level"] == level).sum())
        assert f"{level} 0 of {n} none" in text, level


def test_without_a_floor_the_report_names_the_terms_that_fell_below(tmp_path, s3_endpoint, cells):
    snakemake_ok(tmp_path, LANDING, config=moto_config(s3_endpoint))
    sizes = cells["cluster_alias"].value_counts()
    sample = pd.read_csv(tmp_path / CELL_LIST)
    kept = sample["cluster_alias"].value_counts().reindex(sizes.index, fill_value=0)
    below = kept < np.minimum(sizes, 50)  # no floor: measured against min_cluster_size
    assert below.any()
    levels = pd.read_csv(tmp_path / LEVELS, keep_default_na=False)
    clusters = levels[levels["level"] == "cluster"]
    assert clusters["groups_below_floor"].sum() == below.sum()
    text = page_text(tmp_path / LANDING)
    assert f"cluster {below.sum()} of {len(clusters)} " in text


def test_a_target_too_small_for_the_floors_names_the_smallest_one(tmp_path, s3_endpoint, cells):
    sizes = cells["cluster_alias"].value_counts()
    need = int(sizes.where(sizes < 10, np.minimum(sizes, 30)).sum())
    config = moto_config(s3_endpoint, target_cells=need - 1, min_cluster_size=10,
                         min_cells_per_group=30)  # fmt: skip
    result = run_snakemake(tmp_path, config=config)
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"{ERROR} target_cells={need - 1} cannot hold every group's floor")
    assert f"the smallest target that can is {need}: raise target_cells to {need}" in last


# ---------------------------------------------------------------- cell lists
def web_export(path: Path, sample_ids, unknown=()) -> Path:
    """The web app's cell-selection export: Sample Id first, display names in any order."""
    frame = pd.DataFrame({"Sample Id": list(sample_ids) + list(unknown)})
    frame["Subclass"] = "022 L5 ET CTX Glut"
    frame["Section Label"] = "C57BL6J-638850.31"
    frame["Class"] = "01 IT-ET Glut"
    frame.to_csv(path, index=False)
    return path


def test_a_web_app_export_as_cells_file_builds_exactly_its_cells(tmp_path, s3_endpoint, cells):
    chosen = cells.sample(n=400, random_state=5)
    unknown = ["5f0c1b2e-0000-4000-8000-000000000001", "5f0c1b2e-0000-4000-8000-000000000002"]
    name = "ABC_Atlas_Class_01_IT-ET_Glut_cells_2024_10_23_16_42.csv"
    export = web_export(tmp_path / name, chosen["abc_sample_id"], unknown)
    output = snakemake_ok(tmp_path, config=moto_config(s3_endpoint, cells_file=str(export)))
    result = ad.read_h5ad(tmp_path / RESULT, backed="r")
    assert sorted(result.obs_names) == sorted(chosen["cell_label"])
    warning = (
        f"abc-downsample: warning: sampling.cells_file {export}: 2 of its "
        f"{len(chosen) + 2} Sample Ids match no cell of the WMB-10X cell table"
    )
    assert sum(line.startswith(warning) for line in output.splitlines()) == 1, output[-3000:]


def test_a_plain_label_list_works_as_cells_file(tmp_path, s3_endpoint, cells):
    chosen = cells.sample(n=250, random_state=6)["cell_label"]
    listed = tmp_path / "my_cells.txt"
    listed.write_text("\n".join(chosen) + "\n")  # no header
    snakemake_ok(tmp_path, config=moto_config(s3_endpoint, cells_file=str(listed)))
    assert sorted(ad.read_h5ad(tmp_path / RESULT, backed="r").obs_names) == sorted(chosen)


def test_within_samples_inside_a_selection_and_its_content_decides(tmp_path, s3_endpoint, cells):
    regions = sorted(cells["feature_matrix_label"].unique())
    inside = cells[cells["feature_matrix_label"].isin(regions[:2])]
    selection = web_export(tmp_path / "selection.csv", inside["abc_sample_id"])
    config = moto_config(s3_endpoint, target_cells=300, min_cluster_size=5,
                         within=str(selection))  # fmt: skip
    snakemake_ok(tmp_path, config=config)
    sample = pd.read_csv(tmp_path / CELL_LIST)
    assert len(sample) == 300 and set(sample["cell_label"]) <= set(inside["cell_label"])
    sizes = inside["cluster_alias"].value_counts()
    kept = sample["cluster_alias"].value_counts().reindex(sizes.index, fill_value=0)
    assert (kept[sizes < 5] == sizes[sizes < 5]).all()  # rare within the selection: whole
    assert set(sample["feature_matrix_label"]) == set(regions[:2])  # only their matrices

    # the same file name, other content: the sample and the result follow it
    smaller = cells[cells["feature_matrix_label"] == regions[1]]
    web_export(selection, smaller["abc_sample_id"])
    output = snakemake_ok(tmp_path, config=config)
    assert rule_runs(output, "sample_cells") == 1 and rule_runs(output, "concat") == 1
    result = ad.read_h5ad(tmp_path / RESULT, backed="r")
    assert len(result) == 300 and set(result.obs_names) <= set(smaller["cell_label"])
    assert result.uns["abc_downsample"]["within"] == str(selection)
    assert "Nothing to be done" in snakemake_ok(tmp_path, config=config)


def test_cells_file_and_within_together_is_one_line(tmp_path, s3_endpoint):
    listed = tmp_path / "cells.txt"
    listed.write_text("a\n")
    config = moto_config(s3_endpoint, cells_file=str(listed), within=str(listed))
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"{ERROR} sampling.cells_file and sampling.within are both set")
