"""auto's model times each filter of a chunk's pipeline at its own rate (issue 25):
``abc.link.decode_mbps`` per filter, the plan's decoded bytes per filter."""

import h5py
import numpy as np
import pytest
from conftest import store_of, stream_settings

from abc_downsample.config_check import abc_with_defaults
from abc_downsample.stream.plan import FILTERS, Link, choose
from abc_downsample.stream.source import RemoteCsrSource
from abc_downsample.units import MB, MiB

KEY = "expression_matrices/WMB-test/20230630/x.h5ad"


def link(decode_mbps) -> Link:
    return Link.from_config(abc_with_defaults({"link": {"decode_mbps": decode_mbps}})["link"])


def test_the_default_config_names_a_rate_for_every_filter():
    default = Link.from_config(abc_with_defaults({})["link"])
    assert set(default.filter_bps) == set(FILTERS)
    assert default.decode_bps == min(default.filter_bps.values())


def test_one_number_is_the_rate_of_every_filter():
    one = link(250)
    assert one.filter_bps == {} and one.decode_bps == 250 * MB
    assert one.decode_seconds({"gzip": 250 * MB, "lzf": 500 * MB}) == pytest.approx(3.0)


def test_each_filter_at_its_own_rate_and_a_pipeline_pays_each_stage():
    rates = link({"gzip": 200, "lzf": 800, "shuffle": 1000})
    assert rates.decode_seconds({"lzf": 800 * MB}) == pytest.approx(1.0)
    assert rates.decode_seconds({"gzip": 400 * MB, "shuffle": 400 * MB}) == pytest.approx(2.4)
    # a filter the config leaves out: the slowest rate named
    assert rates.decode_seconds({"fletcher32": 200 * MB}) == pytest.approx(1.0)


def test_choose_charges_the_per_filter_time_to_both_modes():
    rates = link({"gzip": 200, "lzf": 800})
    common = {"stream_requests": 500, "stream_bytes": 50 * MB, "stream_concurrency": 32,
              "file_bytes": 300 * MB, "part_bytes": 64 * MiB, "download_concurrency": 8,
              "decoded_bytes": 400 * MB}  # fmt: skip
    gzip = choose(rates, **common, decoded_by_filter={"gzip": 400 * MB})
    lzf = choose(rates, **common, decoded_by_filter={"lzf": 400 * MB})
    assert gzip.decode_s == pytest.approx(2.0) and lzf.decode_s == pytest.approx(0.5)
    assert gzip.stream_s - lzf.stream_s == pytest.approx(1.5)
    assert gzip.download_s - lzf.download_s == pytest.approx(1.5)


@pytest.mark.parametrize(
    "options, names",
    [({"compression": "gzip", "shuffle": True}, {"gzip", "shuffle"}),
     ({"compression": "lzf"}, {"lzf"}),
     ({}, set())],
    ids=["shuffle+gzip", "lzf", "chunked raw"],
)  # fmt: skip
def test_the_plan_counts_the_bytes_each_filter_puts_out(tmp_path, options, names):
    rng = np.random.default_rng(2)
    n_rows, per_row = 400, 50
    path = tmp_path / KEY
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        x = f.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        x.attrs["shape"] = np.array([n_rows, 2000], dtype=np.int64)
        for name, dtype in (("data", "f4"), ("indices", "i4")):
            values = rng.integers(0, 2000, n_rows * per_row).astype(dtype)
            x.create_dataset(name, data=values, chunks=(1000,), **options)
        x.create_dataset("indptr", data=np.arange(n_rows + 1, dtype=np.int64) * per_row)
        labels = np.array([f"cell-{i}" for i in range(n_rows)], dtype=object)
        f.create_dataset("obs/cell_label", data=labels, dtype=h5py.string_dtype())
    rows = np.arange(0, n_rows, 7)
    with RemoteCsrSource(store_of(str(tmp_path)), KEY, **stream_settings(merge_gap=0)) as remote:
        plan = remote.plan_rows(rows)
    assert set(plan.decoded_by_filter) == names
    for name in names:  # every stage of the pipeline puts out the chunks' decoded bytes
        assert plan.decoded_by_filter[name] == plan.decoded_bytes > 0


def test_the_plan_weighs_a_filter_pipeline_as_the_subset_job_does(tmp_path, caplog):
    """The plan card's auto choice for some rows of a shuffle+gzip file is the job's: each
    filter at its own rate (not all its decoding at the slowest one)."""
    import dataclasses
    import logging

    import pandas as pd

    from abc_downsample.demo.common import random_counts, write_h5ad
    from abc_downsample.plan.matrices import Fetch, MatrixCost
    from abc_downsample.subset.job import subset_auto

    n_rows, labels = 400, [f"cell-{i}" for i in range(400)]
    path = tmp_path / KEY
    path.parent.mkdir(parents=True)
    genes = pd.DataFrame(index=[f"g{i}" for i in range(300)])
    write_h5ad(path, pd.DataFrame(index=labels), genes, {},
               random_counts(np.random.default_rng(2), n_rows, 300), "gzip-shuffle")  # fmt: skip
    rows = np.arange(0, n_rows, 3)
    cells = tmp_path / "cells.csv"
    pd.DataFrame({"cell_label": [labels[i] for i in rows],
                  "feature_matrix_label": "WMB-test"}).to_csv(cells, index=False)  # fmt: skip
    abc = abc_with_defaults({"stream": {"merge_gap_kb": 0}})
    slow = link({"gzip": 0.1, "shuffle": 0.2})  # decoding in seconds, a rate per stage
    store = store_of(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="abc_downsample"):
        subset_auto(store, KEY, cells, tmp_path / "out.h5ad", "WMB-test", lambda: path,
                    link=slow, download=abc["download"],
                    max_concurrency=abc["stream"]["max_concurrency"], merge_gap_kb=0)  # fmt: skip
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("auto ")]
    with RemoteCsrSource(store, KEY, **stream_settings(merge_gap=0)) as remote:
        spent, planned = remote.stats.bytes, remote.plan_rows(rows)
    assert set(planned.decoded_by_filter) == {"gzip", "shuffle"}
    cost = MatrixCost("WMB-test", KEY, len(rows), n_rows, path.stat().st_size, False, Fetch(),
                      Fetch(), planned, 0, 0)  # fmt: skip
    choice = cost.choice(slow, abc)
    assert choice.decode_s == pytest.approx(slow.decode_seconds(planned.decoded_by_filter))
    assert choice.decode_s > planned.decoded_bytes / slow.decode_bps  # two stages, not one
    assert dataclasses.replace(choice, spent_bytes=spent).line(KEY) == line
