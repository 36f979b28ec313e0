"""Cell lists as analysts have them (issue 23): the ABC Atlas web app's selection export,
plain label lists, and ``sampling.within`` (sample inside a selection)."""

import logging

import numpy as np
import pandas as pd
import pytest

from abc_downsample.errors import AbcError
from abc_downsample.sampling.sample import sample_cells

SIZES = [3, 40, 60, 300, 597]  # 1000 cells; 3 under min_cluster_size 5


@pytest.fixture
def release(tmp_path):
    """A WMB-like cell table with unique abc_sample_ids (rows shuffled), its taxonomy."""
    groups = np.repeat(np.arange(1, len(SIZES) + 1), SIZES)
    n = len(groups)
    cells = pd.DataFrame(
        {
            "cell_label": [f"AAAC{i:06d}-{g}_A01" for i, g in enumerate(groups)],
            "feature_matrix_label": np.where(np.arange(n) % 2, "WMB-10Xv3-TH", "WMB-10Xv2-TH"),
            "dataset_label": np.where(np.arange(n) % 2, "WMB-10Xv3", "WMB-10Xv2"),
            "library_method": "10Xv3",
            "cluster_alias": groups,
            "abc_sample_id": [f"{i:08x}-b70b-48a0-b29f-f4cfd24025ac" for i in range(n)],
        }
    ).sample(frac=1, random_state=1)
    metadata = tmp_path / "cell_metadata.csv"
    cells.to_csv(metadata, index=False)
    k = np.arange(1, len(SIZES) + 1)
    pivoted = tmp_path / "pivoted.csv"
    pd.DataFrame(
        {"cluster_alias": k, "neurotransmitter": "NA", "class": [f"C{i % 2}" for i in k],
         "subclass": [f"S{i}" for i in k], "supertype": [f"T{i}" for i in k],
         "cluster": [f"K{i}" for i in k]}
    ).to_csv(pivoted, index=False)  # fmt: skip
    return metadata, pivoted, cells.set_index("cell_label")


def config(**changes) -> dict:
    return {
        "target_cells": 100, "min_cluster_size": 5, "seed": 7, "strategy": "proportional",
        "min_cells_per_group": 0, "cluster_column": "cluster_alias", "filters": {},
        "cells_file": None, "within": None,
    } | changes  # fmt: skip


def web_export(path, sample_ids, extra_ids=()):
    """A selection as the web app exports it: Sample Id first, display names after."""
    ids = list(sample_ids) + list(extra_ids)
    pd.DataFrame(
        {
            "Sample Id": ids,
            "Supertype": "0090 L5 ET CTX Glut_1",
            "Section Label": "C57BL6J-638850.31",
            "Class": "01 IT-ET Glut",
            "Anatomical Structure": "VISpm, layer 5",  # a comma, quoted
        }
    ).to_csv(path, index=False)
    return path


def test_a_web_app_export_takes_its_cells_and_drops_unknown_ids_in_one_line(
    release, tmp_path, caplog
):
    metadata, taxonomy, cells = release
    chosen = cells.sample(n=50, random_state=2)
    name = "ABC_Atlas_Class_cells_2024_10_23_16_42.csv"
    export = web_export(tmp_path / name, chosen["abc_sample_id"], ["mer-1", "mer-2", "mer-3"])
    with caplog.at_level(logging.WARNING):
        sample = sample_cells(metadata, taxonomy, config(cells_file=str(export)))
    assert sorted(sample.cells["cell_label"]) == sorted(chosen.index)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "3 of its 53 Sample Ids match no cell" in warnings[0] and "left out" in warnings[0]


def test_an_export_whose_ids_match_nothing_is_an_error(release, tmp_path):
    metadata, taxonomy, _ = release
    export = web_export(tmp_path / "merfish.csv", [], ["merfish-1", "merfish-2"])
    with pytest.raises(AbcError, match="none of the 2 Sample Ids .* 10x view"):
        sample_cells(metadata, taxonomy, config(cells_file=str(export)))


def test_an_export_needs_abc_sample_id_in_the_cell_table(release, tmp_path):
    metadata, taxonomy, cells = release
    no_ids = tmp_path / "no_ids.csv"
    cells.drop(columns="abc_sample_id").to_csv(no_ids)
    export = web_export(tmp_path / "export.csv", cells["abc_sample_id"][:5])
    for key in ("cells_file", "within"):
        with pytest.raises(AbcError) as err:
            sample_cells(no_ids, taxonomy, config(**{key: str(export)}))
        message = str(err.value)
        assert f"sampling.{key}" in message and "has no abc_sample_id column" in message
        assert "\n" not in message and "give the cells' labels instead" in message


@pytest.mark.parametrize("header", ["cell_label", "my cells", None])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_a_plain_label_list_with_or_without_header(release, tmp_path, header, ending):
    metadata, taxonomy, cells = release
    chosen = list(cells.sample(n=30, random_state=4).index)
    lines = ([header] if header else []) + chosen
    listed = tmp_path / "labels.txt"
    listed.write_bytes(ending.join(lines).encode() + ending.encode())
    sample = sample_cells(metadata, taxonomy, config(cells_file=str(listed)))
    assert sorted(sample.cells["cell_label"]) == sorted(chosen)


def test_within_samples_stratified_inside_the_selection(release, tmp_path):
    metadata, taxonomy, cells = release
    # a selection: all of cluster 1 (3 cells), 20 of cluster 2, all of clusters 4 and 5
    inside = pd.concat(
        [cells[cells["cluster_alias"] == 1], cells[cells["cluster_alias"] == 2].iloc[:20],
         cells[cells["cluster_alias"].isin([4, 5])]]
    )  # fmt: skip
    export = web_export(tmp_path / "selection.csv", inside["abc_sample_id"])
    sample = sample_cells(metadata, taxonomy, config(within=str(export), target_cells=120))
    picked = cells.loc[sample.cells["cell_label"]]
    assert len(picked) == 120 and set(picked.index) <= set(inside.index)
    summary = sample.summary.set_index("group")
    assert summary["size"].to_dict() == {1: 3, 2: 20, 4: 300, 5: 597}  # cluster 3: none in it
    kept = picked["cluster_alias"].value_counts()
    assert kept[1] == 3  # under min_cluster_size: whole
    # the rest proportional inside the selection: 117 over 20 + 300 + 597 cells
    assert abs(kept[5] - 117 * 597 / 917) < 1 and abs(kept[2] - 117 * 20 / 917) < 1
    levels = sample.levels
    assert levels.loc[levels["level"] == "cluster", "cells_before"].sum() == len(inside)


def test_within_a_label_list_with_a_floor(release, tmp_path):
    metadata, taxonomy, cells = release
    inside = cells[cells["cluster_alias"].isin([3, 4, 5])]
    listed = tmp_path / "labels.csv"
    listed.write_text("\n".join(inside.index) + "\n")
    sample = sample_cells(
        metadata, taxonomy, config(within=str(listed), target_cells=90, min_cells_per_group=25)
    )
    kept = cells.loc[sample.cells["cell_label"], "cluster_alias"].value_counts()
    assert kept.sum() == 90 and kept.min() >= 25 and set(kept.index) == {3, 4, 5}
