"""A floor per group (``sampling.min_cells_per_group``), checked from the outside: cell
tables of random group sizes go through the whole sampling step, and the output cell list
is recounted with pandas against the guarantee computed here, not by the sampler's code."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abc_downsample.errors import AbcError
from abc_downsample.sampling.allocation import STRATEGIES, allocate
from abc_downsample.sampling.sample import sample_cells


def write_cells(folder, sizes, order_seed=0):
    """A minimal WMB-like cell table (group k has sizes[k] cells, rows shuffled) and a
    pivoted taxonomy; returns their paths."""
    groups = np.repeat(np.arange(1, len(sizes) + 1), sizes)
    cells = pd.DataFrame(
        {
            "cell_label": [f"C{i:06d}-{g}" for i, g in enumerate(groups)],
            "feature_matrix_label": "WMB-10Xv3-TH",
            "dataset_label": "WMB-10Xv3",
            "library_method": "10Xv3",
            "cluster_alias": groups,
        }
    )
    order = np.random.default_rng(order_seed).permutation(len(cells))
    metadata = folder / f"cells_{order_seed}.csv"
    cells.iloc[order].to_csv(metadata, index=False)
    k = np.arange(1, len(sizes) + 1)
    taxonomy = pd.DataFrame(
        {"cluster_alias": k, "neurotransmitter": "NA", "class": [f"C{i % 2}" for i in k],
         "subclass": [f"S{i % 3}" for i in k], "supertype": [f"T{i}" for i in k],
         "cluster": [f"K{i}" for i in k]}
    )  # fmt: skip
    pivoted = folder / "pivoted.csv"
    taxonomy.to_csv(pivoted, index=False)
    return metadata, pivoted


def sampling(**changes) -> dict:
    return {
        "target_cells": 100, "min_cluster_size": 5, "seed": 3, "strategy": "proportional",
        "min_cells_per_group": 0, "cluster_column": "cluster_alias", "filters": {},
        "cells_file": None,
    } | changes  # fmt: skip


def guaranteed(sizes: pd.Series, min_size: int, floor: int) -> pd.Series:
    """What each group must keep: whole under min_size, else min(size, floor)."""
    return sizes.where(sizes < min_size, np.minimum(sizes, floor))


# ---------------------------------------------------------------- by hand
def test_floor_by_hand_then_one_fraction_above_it():
    # 10 cells: whole (under the floor); 60 and 100 held at 30; 1000 takes the rest (130)
    sizes = np.array([10, 60, 100, 1000])
    counts = allocate(sizes, 200, 5, "proportional", np.random.default_rng(0), floor=30)
    assert counts.tolist() == [10, 30, 30, 130]
    # without the floor: one fraction for all, 60 and 100 fall under 30
    plain = allocate(sizes, 200, 5, "proportional", np.random.default_rng(0))
    assert plain.tolist() == [2, 10, 17, 171]


def test_a_large_target_lifts_every_group_above_the_floor():
    sizes = np.array([100, 200, 700])
    counts = allocate(sizes, 500, 5, "proportional", np.random.default_rng(0), floor=30)
    assert counts.tolist() == [50, 100, 350]  # the floor binds nobody: plain proportional


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_target_below_the_floors_names_the_smallest_target(strategy):
    sizes = np.array([3, 10, 60, 100, 1000])  # 3 under min_size 5: whole
    # need: 3 + 10 + 30 + 30 + 30 = 103
    with pytest.raises(AbcError) as err:
        allocate(sizes, 102, 5, strategy, np.random.default_rng(0), floor=30)
    message = str(err.value)
    assert "\n" not in message
    assert "the smallest target that can is 103" in message
    assert "min_cells_per_group" in message
    counts = allocate(sizes, 103, 5, strategy, np.random.default_rng(0), floor=30)
    assert counts.tolist() == [3, 10, 30, 30, 30]


# ---------------------------------------------------------------- independent recount
@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=25),
    floor=st.integers(0, 60),
    min_size=st.integers(0, 20),
    share=st.floats(0, 1),
    strategy=st.sampled_from(sorted(STRATEGIES)),
    seed=st.integers(0, 2**31),
)
def test_every_group_keeps_its_floor_recounted_from_the_cell_list(
    tmp_path_factory, sizes, floor, min_size, share, strategy, seed
):
    folder = tmp_path_factory.mktemp("floor")
    metadata, taxonomy = write_cells(folder, sizes)
    size = pd.Series(sizes, index=np.arange(1, len(sizes) + 1))
    need = int(guaranteed(size, min_size, floor).sum())
    population = int(size.sum())
    target = need + int(share * (population - need))
    config = sampling(target_cells=target, min_cluster_size=min_size, seed=seed,
                      strategy=strategy, min_cells_per_group=floor)  # fmt: skip
    cells = sample_cells(metadata, taxonomy, config).cells
    kept = cells["cluster_alias"].astype(int).value_counts().reindex(size.index, fill_value=0)
    assert len(cells) == min(target, population) and cells["cell_label"].is_unique
    assert (kept >= guaranteed(size, min_size, floor)).all()
    assert (kept <= size).all()
    if strategy == "proportional" and target < population:
        # the groups above their floor share one fraction (each within one cell of it)
        lifted = kept > guaranteed(size, min_size, floor)
        rest = target - int(kept[~lifted].sum())
        fraction = rest / size[lifted].sum() if lifted.any() else 0
        assert (np.abs(kept[lifted] - fraction * size[lifted]) < 1).all()

    if need > 0:
        short = sampling(target_cells=need - 1, min_cluster_size=min_size,
                         strategy=strategy, min_cells_per_group=floor)  # fmt: skip
        if need - 1 < population:
            with pytest.raises(AbcError, match=f"{need}"):
                sample_cells(metadata, taxonomy, short)


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 200), min_size=2, max_size=15),
    floor=st.integers(1, 40),
    order_seed=st.integers(1, 1000),
)
def test_same_seed_same_cells_whatever_the_row_order(tmp_path_factory, sizes, floor, order_seed):
    folder = tmp_path_factory.mktemp("order")
    need = int(guaranteed(pd.Series(sizes), 5, floor).sum())
    target = need + (sum(sizes) - need) // 3
    config = sampling(target_cells=target, min_cells_per_group=floor)
    first = sample_cells(*write_cells(folder, sizes, 0), config).cells
    shuffled = sample_cells(*write_cells(folder, sizes, order_seed), config).cells
    assert first["cell_label"].tolist() == shuffled["cell_label"].tolist()
