"""Sampling strategies, the drawing of cells, filters, given cell lists and the summaries."""

import json
import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pytest
from conftest import PROJECT, local_abc, receipts_for
from hypothesis import given, settings
from hypothesis import strategies as st

from abc_downsample.dataset.profile import load_dataset
from abc_downsample.errors import AbcError
from abc_downsample.metadata import csv_out as csv_tables
from abc_downsample.metadata import tables as metadata
from abc_downsample.sampling import allocation, drawing
from abc_downsample.sampling import sample as sampling
from abc_downsample.sampling.allocation import STRATEGIES, allocate
from abc_downsample.sampling.drawing import select_cells
from abc_downsample.sampling.sample import sample_cells

SIZES = np.array([1, 49, 50, 51])  # the edge cases around min_cluster_size=50


# ---------------------------------------------------------------- small real tables
def write_release(tmp_path, cluster_sizes, seed=0, shuffle_seed=None):
    """cell_metadata.csv (real columns) and a pivoted taxonomy for clusters 1..n.

    Cluster k (1-based) holds cluster_sizes[k-1] cells; its class is 'C<k % 2>', subclass
    'S<k % 3>', supertype 'T<k>', cluster 'K<k>'. Rows in a random order.
    """
    rng = np.random.default_rng(seed)
    alias = np.repeat(np.arange(1, len(cluster_sizes) + 1), cluster_sizes)
    n = len(alias)
    frame = pd.DataFrame(
        {
            "cell_label": [f"CELL{i:07d}-{i % 7}_A01" for i in range(n)],
            "cell_barcode": [f"CELL{i:07d}" for i in range(n)],
            "barcoded_cell_sample_label": [f"{i % 7}_A01" for i in range(n)],
            "library_label": "L8TX_1",
            "feature_matrix_label": rng.choice(["WMB-10Xv3-TH", "WMB-10Xv2-HPF"], n),
            "entity": "cell",
            "brain_section_label": "",
            "library_method": rng.choice(["10Xv2", "10Xv3"], n),
            "region_of_interest_acronym": rng.choice(["TH", "HPF"], n),
            "donor_label": "d",
            "donor_genotype": "wt/wt",
            "donor_sex": rng.choice(["F", "M"], n),
            "dataset_label": "WMB-10Xv3",
            "x": 0.5,
            "y": 1.5,
            "cluster_alias": alias,
            "abc_sample_id": "s",
        }
    )
    frame["dataset_label"] = frame["feature_matrix_label"].str.rsplit("-", n=1).str[0]
    order = np.random.default_rng(shuffle_seed if shuffle_seed is not None else seed).permutation(n)
    metadata = tmp_path / "cell_metadata.csv"
    frame.iloc[order].to_csv(metadata, index=False)
    k = np.arange(1, len(cluster_sizes) + 1)
    taxonomy = pd.DataFrame(
        {
            "cluster_alias": k,
            "neurotransmitter": "NA",
            "class": [f"C{i % 2}" for i in k],
            "subclass": [f"S{i % 3}" for i in k],
            "supertype": [f"T{i}" for i in k],
            "cluster": [f"K{i}" for i in k],
        }
    )
    taxonomy_path = tmp_path / "pivoted.csv"
    taxonomy.to_csv(taxonomy_path, index=False)
    return metadata, taxonomy_path, frame


def config(**changes):
    base = {
        "target_cells": 100,
        "min_cluster_size": 50,
        "seed": 7,
        "strategy": "proportional",
        "cluster_column": "cluster_alias",
        "filters": {},
        "cells_file": None,
    }
    return base | changes


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path, [1, 49, 50, 51, 200, 649])  # 1000 cells


# ---------------------------------------------------------------- strategies, by hand
def test_proportional_by_hand():
    # rare: 1 + 49 whole; 30 left for 50 and 51: quotas 14.85 and 15.15 -> 15 and 15
    counts = allocate(SIZES, 80, 50, "proportional", np.random.default_rng(0))
    assert counts.tolist() == [1, 49, 15, 15]


def test_proportional_largest_remainder_goes_up():
    # 10 left for 50 and 51: quotas 4.95 and 5.05 -> floors 4 + 5, the 0.95 rounds up
    counts = allocate(SIZES, 60, 50, "proportional", np.random.default_rng(0))
    assert counts.tolist() == [1, 49, 5, 5]


def test_proportional_ties_are_broken_by_the_seed():
    sizes = np.array([10, 10, 10, 10])
    winners = {
        tuple(allocate(sizes, 2, 0, "proportional", np.random.default_rng(s))) for s in range(30)
    }
    assert all(sum(w) == 2 and max(w) == 1 for w in winners)
    assert len(winners) > 1  # different seeds, different tie-breaks
    first = allocate(sizes, 2, 0, "proportional", np.random.default_rng(3))
    assert (
        first.tolist() == allocate(sizes, 2, 0, "proportional", np.random.default_rng(3)).tolist()
    )


def test_capped_by_hand():
    counts = allocate(SIZES, 80, 50, "capped", np.random.default_rng(0))
    assert counts.tolist() == [1, 49, 15, 15]
    counts = allocate(SIZES, 81, 50, "capped", np.random.default_rng(0))
    assert counts[:2].tolist() == [1, 49] and sorted(counts[2:].tolist()) == [15, 16]


def test_capped_fills_small_groups_before_capping_big_ones():
    sizes = np.array([60, 100, 1000])
    counts = allocate(sizes, 400, 50, "capped", np.random.default_rng(0))
    assert counts.tolist() == [60, 100, 240]


def test_pooled_keeps_rare_whole_and_draws_the_rest():
    counts = allocate(SIZES, 80, 50, "pooled", np.random.default_rng(0))
    assert counts[:2].tolist() == [1, 49]
    assert counts[2:].sum() == 30


def test_pooled_matches_a_uniform_pooled_draw_on_average():
    sizes = np.array([100, 300])
    draws = np.array(
        [allocate(sizes, 40, 0, "pooled", np.random.default_rng(s)) for s in range(400)]
    )
    assert abs(draws[:, 0].mean() - 10) < 0.5  # expectation 40 * 100 / 400
    assert draws[:, 0].std() > 1  # random, unlike proportional's fixed 10


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_target_equal_to_rare_cells_draws_nothing_else(strategy):
    counts = allocate(SIZES, 50, 50, strategy, np.random.default_rng(0))
    assert counts.tolist() == [1, 49, 0, 0]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_target_below_rare_cells_is_explained(strategy):
    with pytest.raises(AbcError, match=r"target_cells=49 .* 50 cells of the 2 groups") as err:
        allocate(SIZES, 49, 50, strategy, np.random.default_rng(0))
    assert "raise target_cells or lower min_cluster_size" in str(err.value)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_target_above_population_takes_all_with_a_warning(strategy, caplog):
    with caplog.at_level(logging.WARNING):
        counts = allocate(SIZES, 1000, 50, strategy, np.random.default_rng(0))
    assert counts.tolist() == SIZES.tolist()
    assert "taking all of them" in caplog.text and "151 cells" in caplog.text


def test_empty_population_and_unknown_strategy_are_errors():
    with pytest.raises(AbcError, match="no cells to sample from"):
        allocate(np.array([0, 0]), 10, 50, "proportional", np.random.default_rng(0))
    with pytest.raises(AbcError, match="unknown sampling.strategy 'fancy'"):
        allocate(SIZES, 80, 50, "fancy", np.random.default_rng(0))


def test_a_new_strategy_is_one_function(monkeypatch):
    def rare_then_first(sizes, target, least, rng):
        counts, open_, budget = allocation._open_groups(sizes, target, least)
        for i in np.flatnonzero(open_):
            counts[i] += min(sizes[i] - least[i], budget)
            budget -= counts[i] - least[i]
        return counts

    monkeypatch.setitem(STRATEGIES, "greedy", rare_then_first)
    assert allocate(SIZES, 80, 50, "greedy", np.random.default_rng(0)).tolist() == [1, 49, 30, 0]


# ---------------------------------------------------------------- properties
sizes_lists = st.lists(st.integers(0, 300), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(
    sizes=sizes_lists,
    min_size=st.integers(0, 120),
    fraction=st.floats(0, 1),
    strategy=st.sampled_from(sorted(STRATEGIES)),
    seed=st.integers(0, 2**32),
)
def test_every_strategy_hits_the_target(sizes, min_size, fraction, strategy, seed):
    sizes = np.array(sizes)
    population = sizes.sum()
    rare = sizes[sizes < min_size].sum()
    if population == 0:
        return
    target = int(rare + fraction * (population - rare))
    counts = allocate(sizes, target, min_size, strategy, np.random.default_rng(seed))
    assert counts.sum() == min(target, population)
    assert (counts >= 0).all() and (counts <= sizes).all()
    small = sizes < min_size
    assert (counts[small] == sizes[small]).all()


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 80), min_size=1, max_size=12),
    strategy=st.sampled_from(sorted(STRATEGIES)),
    seed=st.integers(0, 2**32),
    order_seed=st.integers(0, 1000),
    fraction=st.floats(0, 1),
)
def test_selection_is_invariant_to_row_order(sizes, strategy, seed, order_seed, fraction):
    groups = np.repeat(np.arange(len(sizes)), sizes)
    labels = np.array([f"cell-{i}-{g}" for i, g in enumerate(groups)], dtype=object)
    rare = sum(s for s in sizes if s < 20)
    target = int(rare + fraction * (len(groups) - rare))
    args = {"target": target, "min_size": 20, "strategy": strategy, "seed": seed}
    picked, counts = select_cells(labels, groups, len(sizes), **args)
    order = np.random.default_rng(order_seed).permutation(len(groups))
    picked_shuffled, _ = select_cells(labels[order], groups[order], len(sizes), **args)
    assert set(labels[picked]) == set(labels[order][picked_shuffled])
    assert picked.sum() == min(target, len(groups))
    assert np.bincount(groups[picked], minlength=len(sizes)).tolist() == counts.tolist()


def test_draw_is_uniform_within_a_group():
    labels = np.array([f"AAAC{i:04d}-1" for i in range(20)], dtype=object)
    groups = np.zeros(20, dtype=np.int64)
    hits = np.zeros(20)
    for seed in range(2000):
        picked, _ = select_cells(
            labels, groups, 1, target=5, min_size=0, strategy="proportional", seed=seed
        )
        hits += picked
    frequency = hits / 2000
    assert np.abs(frequency - 0.25).max() < 0.05  # 5 standard deviations


def test_different_seeds_give_different_samples():
    labels = np.array([f"cell{i}" for i in range(1000)], dtype=object)
    groups = np.zeros(1000, dtype=np.int64)
    args = {"target": 100, "min_size": 0, "strategy": "proportional"}
    a, _ = select_cells(labels, groups, 1, seed=1, **args)
    b, _ = select_cells(labels, groups, 1, seed=2, **args)
    assert a.sum() == b.sum() == 100
    assert (a != b).any()


def test_priorities_depend_on_label_and_seed_only():
    labels = pa.chunked_array([["a", "bb"], ["ccc", "a"]])
    first = drawing.label_priorities(labels, 1)
    assert first[0] == first[3] and len(set(first[:3])) == 3
    again = drawing.label_priorities(pa.array(["ccc", "a", "bb"]), 1)
    assert again.tolist() == [first[2], first[0], first[1]]
    assert (drawing.label_priorities(labels, 2) != first).all()


def test_ties_at_the_threshold_still_give_exact_counts():
    codes = np.zeros(6, dtype=np.int64)
    priorities = np.array([5, 1, 1, 1, 9, 1], dtype=np.uint64)  # four-way tie
    picked = drawing.draw_cells(codes, priorities, np.array([2]))
    assert picked.sum() == 2 and not picked[0] and not picked[4]


# ---------------------------------------------------------------- the whole step on files
def test_sample_cells_end_to_end(release):
    metadata, taxonomy, frame = release
    sample = sample_cells(metadata, taxonomy, config(target_cells=300))
    cells = sample.cells
    assert len(cells) == 300
    assert list(cells.columns) == sampling.cell_columns(load_dataset())
    assert cells["cell_label"].is_unique
    expected_order = cells.sort_values(["feature_matrix_label", "cell_label"])
    assert cells["cell_label"].tolist() == expected_order["cell_label"].tolist()
    truth = frame.set_index("cell_label").loc[cells["cell_label"]]
    assert (truth["cluster_alias"].to_numpy() == cells["cluster_alias"].to_numpy()).all()
    assert (truth["dataset_label"].to_numpy() == cells["dataset_label"].to_numpy()).all()
    per_cluster = cells["cluster_alias"].value_counts()
    assert per_cluster[1] == 1 and per_cluster[2] == 49  # rare clusters whole

    summary = sample.summary
    assert list(summary.columns) == [
        "group",
        "size",
        "selected",
        "kept_whole",
        "class",
        "subclass",
        "supertype",
        "cluster",
    ]
    assert summary["group"].tolist() == [1, 2, 3, 4, 5, 6]
    assert summary["size"].tolist() == [1, 49, 50, 51, 200, 649]
    assert summary["selected"].sum() == 300
    assert summary["selected"].tolist() == per_cluster.reindex(summary["group"]).tolist()
    assert summary["kept_whole"].tolist()[:2] == [True, True]
    assert summary.loc[summary["group"] == 4, "subclass"].item() == "S1"


def test_levels_view_adds_up(release):
    metadata, taxonomy, _ = release
    levels = sample_cells(metadata, taxonomy, config(target_cells=300)).levels
    assert list(levels.columns) == [
        "level",
        "term",
        "cells_before",
        "cells_after",
        "groups_before",
        "groups_kept_whole",
        "groups_below_floor",
        "smallest_group_before",
        "smallest_group_after",
    ]
    assert levels["level"].unique().tolist() == ["class", "subclass", "supertype", "cluster"]
    for _, view in levels.groupby("level"):
        assert view["cells_before"].sum() == 1000
        assert view["cells_after"].sum() == 300
        assert view["groups_before"].sum() == 6  # each cluster in one term per level
        assert view["groups_kept_whole"].sum() == 2
        # no floor set: measured against min_cluster_size; clusters of 50 and 51 keep 13
        assert view["groups_below_floor"].sum() == 2
    c1 = levels[(levels["level"] == "class") & (levels["term"] == "C1")].iloc[0]
    assert c1["cells_before"] == 1 + 50 + 200  # clusters 1, 3, 5
    assert c1["groups_before"] == 3 and c1["groups_kept_whole"] == 1
    assert c1["groups_below_floor"] == 1  # cluster 3: 13 of 50
    assert c1["smallest_group_before"] == 1 and c1["smallest_group_after"] == 1
    k4 = levels[(levels["level"] == "cluster") & (levels["term"] == "K4")].iloc[0]
    assert (k4["smallest_group_before"], k4["smallest_group_after"]) == (51, 13)

    floored = sample_cells(metadata, taxonomy, config(target_cells=300, min_cells_per_group=20))
    assert floored.levels["groups_below_floor"].sum() == 0
    assert floored.levels["smallest_group_after"].min() == 1  # the 1-cell cluster, whole
    assert (floored.summary["selected"] >= np.minimum(floored.summary["size"], 20)).all()


def test_files_are_identical_whatever_the_row_order_and_threads(tmp_path):
    """The tables byte for byte; the rows for concat (in the cell table's order) by value."""
    outputs, rows = [], []
    for run, (shuffle, threads) in enumerate([(1, 2), (2, 1)]):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        metadata, taxonomy, _ = write_release(folder, [3, 60, 70, 500], shuffle_seed=shuffle)
        before = pa.cpu_count()
        pa.set_cpu_count(threads)
        try:
            paths = [folder / name for name in ("cells.csv", "summary.csv", "levels.csv")]
            sampling.sample_to_files(metadata, taxonomy, config(target_cells=200), *paths,
                                     folder / "rows.arrow", folder / "population.json")  # fmt: skip
        finally:
            pa.set_cpu_count(before)
        outputs.append([p.read_bytes() for p in paths])
        table = feather.read_table(folder / "rows.arrow")
        rows.append(table.take(pc.sort_indices(table, [("cell_label", "ascending")])))
    assert outputs[0] == outputs[1]
    assert rows[0].to_pylist() == rows[1].to_pylist() and len(rows[0]) == 200


def test_group_by_a_taxonomy_level(release):
    metadata, taxonomy, frame = release
    sample = sample_cells(metadata, taxonomy, config(cluster_column="subclass", target_cells=90))
    assert list(sample.summary.columns) == ["group", "size", "selected", "kept_whole"]
    assert sample.summary["group"].tolist() == ["S0", "S1", "S2"]
    sizes = frame["cluster_alias"].map(lambda k: f"S{k % 3}").value_counts()
    assert sample.summary["size"].tolist() == sizes.reindex(["S0", "S1", "S2"]).tolist()
    assert "subclass" in sample.cells.columns
    assert sample.cells["subclass"].value_counts().sum() == 90
    cluster_level = sample.levels[sample.levels["level"] == "cluster"]
    assert cluster_level["groups_before"].tolist() == [1] * 6  # a cluster lies in one subclass


def test_group_by_a_metadata_column(release):
    metadata, taxonomy, _ = release
    sample = sample_cells(
        metadata, taxonomy, config(cluster_column="region_of_interest_acronym", target_cells=10)
    )
    assert sample.summary["group"].tolist() == ["HPF", "TH"]
    assert sample.summary["selected"].sum() == 10
    assert sample.cells["region_of_interest_acronym"].isin(["HPF", "TH"]).all()


def test_group_column_with_missing_values_is_an_error(release):
    metadata, taxonomy, _ = release
    with pytest.raises(AbcError, match="some cells have no brain_section_label"):
        sample_cells(metadata, taxonomy, config(cluster_column="brain_section_label"))


def test_unknown_group_column_lists_valid_ones(release):
    metadata, taxonomy, _ = release
    with pytest.raises(
        AbcError, match="'subtype' is neither .* use one of cell_label, .*, supertype, cluster$"
    ):
        sample_cells(metadata, taxonomy, config(cluster_column="subtype"))


def test_filters_on_metadata_and_taxonomy(release):
    metadata, taxonomy, frame = release
    filters = {"library_method": ["10Xv3"], "class": ["C0"]}
    sample = sample_cells(metadata, taxonomy, config(filters=filters, target_cells=100))
    expected = frame[(frame["library_method"] == "10Xv3") & (frame["cluster_alias"] % 2 == 0)]
    assert sample.summary["size"].sum() == len(expected)
    assert set(sample.cells["cell_label"]) <= set(expected["cell_label"])
    assert (sample.cells["library_method"] == "10Xv3").all()
    assert sample.levels.loc[sample.levels["level"] == "class", "term"].tolist() == ["C0"]


def test_filter_values_may_be_numbers(release):
    metadata, taxonomy, _ = release
    sample = sample_cells(metadata, taxonomy, config(filters={"cluster_alias": [5, 6]}))
    assert sample.summary["group"].tolist() == [5, 6]
    assert sample.summary["selected"].sum() == 100


def test_filter_errors(release):
    metadata, taxonomy, _ = release
    with pytest.raises(AbcError, match="filters column 'tissue' is neither"):
        sample_cells(metadata, taxonomy, config(filters={"tissue": ["x"]}))
    with pytest.raises(AbcError, match=r"value\(s\) 'CB' match no cell: valid .*'HPF', 'TH'"):
        sample_cells(metadata, taxonomy, config(filters={"region_of_interest_acronym": ["CB"]}))
    with pytest.raises(AbcError, match="no cells to sample from: relax sampling.filters"):
        sample_cells(
            metadata,
            taxonomy,
            config(filters={"cluster_alias": [1], "class": ["C0"]}),  # cluster 1 is in C1
        )


def test_target_above_population_in_the_whole_step(release, caplog):
    metadata, taxonomy, _ = release
    with caplog.at_level(logging.INFO):
        sample = sample_cells(metadata, taxonomy, config(target_cells=5000))
    assert len(sample.cells) == 1000
    assert sample.summary["kept_whole"].all()
    assert "taking all of them" in caplog.text
    assert "population 1000 cells in 6 groups" in caplog.text


def test_cells_file_skips_sampling(release, tmp_path):
    metadata, taxonomy, frame = release
    chosen = frame.sample(n=37, random_state=3)
    given = tmp_path / "from_r.csv"
    chosen[["cluster_alias", "cell_label"]].assign(extra="x").to_csv(given)  # R-like extras
    sample = sample_cells(metadata, taxonomy, config(cells_file=str(given)))
    assert sorted(sample.cells["cell_label"]) == sorted(chosen["cell_label"])
    assert sample.summary["selected"].sum() == 37
    counts = chosen["cluster_alias"].value_counts()
    assert sample.summary.set_index("group")["selected"].reindex(counts.index).tolist() == (
        counts.tolist()
    )


def test_cells_file_errors(release, tmp_path):
    metadata, taxonomy, frame = release
    unknown = tmp_path / "unknown.csv"
    pd.DataFrame({"cell_label": [frame["cell_label"].iloc[0], "NOPE-1", "NOPE-2"]}).to_csv(
        unknown, index=False
    )
    with pytest.raises(AbcError, match=r"2 cell label\(s\) of sampling.cells_file .*'NOPE-"):
        sample_cells(metadata, taxonomy, config(cells_file=str(unknown)))
    no_label = tmp_path / "no_label.csv"
    no_label.write_text("barcode,x\nAAA,1\n")
    with pytest.raises(AbcError, match="is not a cell list .* no cell_label"):
        sample_cells(metadata, taxonomy, config(cells_file=str(no_label)))
    one_column = tmp_path / "one_column.csv"
    one_column.write_text("barcode\nAAA\n")  # a label list: its first line a header
    with pytest.raises(AbcError, match=r"1 cell label\(s\) .* 'AAA'"):
        sample_cells(metadata, taxonomy, config(cells_file=str(one_column)))
    with pytest.raises(AbcError, match="does not exist"):
        sample_cells(metadata, taxonomy, config(cells_file=str(tmp_path / "missing.csv")))


@pytest.mark.parametrize("how", ["filters", "cells_file"])
def test_sample_rows_are_the_full_rows_of_exactly_the_sampled_cells(release, tmp_path, how,
                                                                    monkeypatch):  # fmt: skip
    """What concat takes obs from: every column of the cell table, in its order, for the
    sampled cells only (small blocks: many blocks)."""
    monkeypatch.setattr(metadata, "BLOCK_SIZE", 8 << 10)
    monkeypatch.setattr(metadata, "SCAN_BLOCK", 4 << 10)
    metadata_path, taxonomy, frame = release
    if how == "filters":
        changes = {"filters": {"region_of_interest_acronym": ["TH"]}, "target_cells": 200}
    else:
        given = tmp_path / "given.csv"
        frame.sample(n=37, random_state=3)[["cell_label"]].to_csv(given, index=False)
        changes = {"cells_file": str(given)}
    sample = sample_cells(metadata_path, taxonomy, config(**changes))
    rows = sample.rows.to_pandas().set_index("cell_label")
    assert sorted(rows.index) == sorted(sample.cells["cell_label"])
    assert list(rows.columns) == list(frame.columns[1:])
    expected = frame.set_index("cell_label").loc[rows.index]
    for column in ("cell_barcode", "donor_sex", "region_of_interest_acronym", "cluster_alias"):
        assert rows[column].astype(str).tolist() == expected[column].astype(str).tolist(), column
    assert rows["brain_section_label"].isna().all()  # empty fields: missing
    if how == "filters":
        assert set(rows["region_of_interest_acronym"]) == {"TH"}


def test_taxonomy_of_another_release_is_an_error(release, tmp_path):
    metadata, _, _ = release
    taxonomy = tmp_path / "other.csv"
    pd.DataFrame(
        {
            "cluster_alias": [1, 2],
            **{level: ["a", "b"] for level in ("class", "subclass", "supertype", "cluster")},
        }
    ).to_csv(taxonomy, index=False)
    with pytest.raises(AbcError, match="cluster_alias 3, 4, 5, 6 in .* are not in the taxonomy"):
        sample_cells(metadata, taxonomy, config())


# ---------------------------------------------------------------- the rule script
SNAKEFILE = """
config.update({config!r})
rule sample_cells:
    input:
        cell_metadata={metadata!r},
        taxonomy={taxonomy!r},
    output:
        cells="out/downsampled_cells.csv",
        summary="out/sampling_summary.csv",
        levels="out/sampling_levels.csv",
        rows="out/.abc/sample/cell_rows.arrow",
        population="out/.abc/sample/population.json",
        done="out/sample.done.json",
    params:
        sampling={sampling!r},
        settings={sampling!r},
        dataset={dataset!r},
    log:
        "out/logs/sample_cells.log",
    script:
        {script!r}
"""


def run_rule(tmp_path, metadata, taxonomy, settings_):
    """The rule script under the real snakemake, its tables given as receipts of cached
    files, as the workflow does."""
    for path in (metadata, taxonomy):
        if Path(path).parent != tmp_path:
            shutil.copy(path, tmp_path / Path(path).name)
    receipts = receipts_for(tmp_path, Path(metadata).name, Path(taxonomy).name)
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        textwrap.dedent(
            SNAKEFILE.format(
                config={"abc": local_abc(tmp_path)},
                metadata=str(receipts[Path(metadata).name]),
                taxonomy=str(receipts[Path(taxonomy).name]),
                sampling=settings_,
                dataset=load_dataset().raw,
                script=str(PROJECT / "scripts" / "sample_cells.py"),
            )
        )
    )
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--cores", "1", "-q"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)


def test_rule_script_writes_the_three_files_and_the_rows(release, tmp_path):
    metadata, taxonomy, _ = release
    result = run_rule(tmp_path, metadata, taxonomy, config(target_cells=300))
    assert result.returncode == 0, result.stderr
    cells = pd.read_csv(tmp_path / "out" / "downsampled_cells.csv")
    assert len(cells) == 300
    rows = feather.read_table(tmp_path / "out" / ".abc" / "sample" / "cell_rows.arrow")
    assert sorted(rows.column("cell_label").to_pylist()) == sorted(cells["cell_label"])
    assert sorted(p.name for p in (tmp_path / "out" / ".abc" / "sample").iterdir()) == [
        "cell_rows.arrow", "population.json"
    ], "no spilled file left behind"
    assert json.loads((tmp_path / "out" / ".abc" / "sample" / "population.json").read_text()) == {
        "cells": 1000, "without_group": 0, "unassigned": "drop", "membership": ""
    }
    assert pd.read_csv(tmp_path / "out" / "sampling_summary.csv")["selected"].sum() == 300
    assert (tmp_path / "out" / "sampling_levels.csv").stat().st_size > 0
    log = (tmp_path / "out" / "logs" / "sample_cells.log").read_text()
    assert "population 1000 cells" in log


def test_rule_script_reports_a_user_error_in_one_line(release, tmp_path):
    metadata, taxonomy, _ = release
    result = run_rule(tmp_path, metadata, taxonomy, config(target_cells=10))
    assert result.returncode != 0
    assert "abc-downsample: error: target_cells=10 is below the 50 cells" in result.stderr
    assert not (tmp_path / "out" / "downsampled_cells.csv").exists()


def test_write_csv_quotes_only_when_needed_and_spells_booleans_alike(tmp_path):
    frame = pd.DataFrame({"group": ["a,b", "c"], "kept_whole": [True, False], "size": [1, 2]})
    csv_tables.write_csv(frame, tmp_path / "quoted.csv")
    assert (tmp_path / "quoted.csv").read_text() == (
        'group,kept_whole,size\n"a,b",True,1\nc,False,2\n'
    )
    csv_tables.write_csv(frame.iloc[1:], tmp_path / "plain.csv")
    assert (tmp_path / "plain.csv").read_text() == "group,kept_whole,size\nc,False,2\n"


def test_unassigned_cells_kept_leave_the_other_groups_their_terms(tmp_path):
    """Integer group keys from a membership table, and cells without one kept as their own
    group: the summary still names every other group's terms (they are not looked up by
    the text the unassigned group made of the keys)."""
    from abc_downsample.dataset.profile import dataset_from_dict
    from abc_downsample.sampling.sample import SideTables

    metadata_path, taxonomy_path, frame = write_release(tmp_path, [60, 80, 120])
    cells = frame.drop(columns="cluster_alias")
    cells.to_csv(metadata_path, index=False)
    membership = tmp_path / "cell_to_cluster_membership.csv"
    frame[["cell_label", "cluster_alias"]].iloc[40:].to_csv(membership, index=False)
    raw = load_dataset().raw
    member_table = {"directory": "t", "name": "cell_to_cluster_membership", "label": "cell_label"}
    dataset = dataset_from_dict({**raw, "cells": {**raw["cells"], "membership": member_table}})
    sample = sample_cells(
        metadata_path, [taxonomy_path], config(target_cells=150, unassigned="keep"),
        dataset, SideTables(membership=membership),
    )  # fmt: skip
    summary = sample.summary.set_index("group")
    assert sample.population.without_group == 40
    assert list(summary.index) == ["1", "2", "3", "unassigned"]
    assert summary["supertype"].tolist()[:3] == ["T1", "T2", "T3"]
    assert summary["class"].tolist()[:3] == ["C1", "C0", "C1"]
    assert pd.isna(summary.loc["unassigned", "supertype"])
    assert summary["size"].tolist() == [20, 80, 120, 40]
