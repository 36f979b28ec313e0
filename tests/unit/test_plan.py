"""The plan's estimates (issue 23) against what a stream job then fetches, on the synthetic
release's matrices (contiguous, chunked and gzip layouts), read from a local mirror: bytes
do not depend on the link."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_paths import CELLS

from abc_downsample.cache.store import LocalStore
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.plan.card import duration_text, plan_lines
from abc_downsample.plan.matrices import matrix_cost
from abc_downsample.stream.plan import Link
from abc_downsample.subset.job import subset_remote


@pytest.fixture(scope="module")
def mirror(synthetic_release):
    root = Path(synthetic_release["root"]).resolve()
    cells = pd.read_csv(root / CELLS, keep_default_na=False)
    return {"root": root, "cells": cells, "matrices": synthetic_release["matrices"]}


@pytest.mark.parametrize("share", [0.05, 0.3, 0.9])
def test_stream_bytes_planned_from_headers_match_what_stream_fetches(mirror, tmp_path, share):
    picked = mirror["cells"].sample(frac=share, random_state=3)
    cells_csv = tmp_path / "cells.csv"
    picked[["cell_label", "feature_matrix_label"]].to_csv(cells_csv, index=False)
    store = LocalStore(mirror["root"])
    planned = fetched = 0
    for matrix, n in picked["feature_matrix_label"].value_counts().items():
        key = mirror["matrices"][matrix]["raw"]
        size = (mirror["root"] / key).stat().st_size
        cost = matrix_cost(store, key, size, matrix, int(n), cached=False,
                           merge_gap=64 * 1024, concurrency=8)  # fmt: skip
        stats = subset_remote(store, key, cells_csv, tmp_path / f"{matrix}.h5ad", matrix,
                              max_concurrency=8, merge_gap_kb=64)  # fmt: skip
        estimate = cost.opening.nbytes + cost.rows.nbytes
        assert abs(estimate - stats.bytes_read) <= 0.2 * stats.bytes_read, matrix
        assert cost.planning.nbytes <= size + 256 * 1024  # headers: never much past the file
        planned, fetched = planned + estimate, fetched + stats.bytes_read
    assert abs(planned - fetched) <= 0.05 * fetched


def test_the_modes_of_a_matrix_follow_the_cache_and_the_link(mirror):
    store = LocalStore(mirror["root"])
    key = mirror["matrices"]["WMB-10Xv3-HPF"]["raw"]
    size = (mirror["root"] / key).stat().st_size
    abc = abc_with_defaults({})
    slow = Link.from_config({**abc["link"], "request_cpu_ms": 1e4})  # requests dear: download
    for cached in (False, True):
        cost = matrix_cost(store, key, size, "WMB-10Xv3-HPF", 100, cached=cached,
                           merge_gap=64 * 1024, concurrency=8)  # fmt: skip
        modes = cost.modes(Link.from_config(abc["link"]), abc, remote=True)
        assert modes["stream"][0] == "stream" and modes["stream"][1] > 0
        if cached:
            assert modes["download"] == ("cache", 0, 0.0) and modes["auto"] == modes["download"]
        else:
            assert modes["download"][:2] == ("download", size)
            assert cost.modes(slow, abc, remote=True)["auto"][0] == "download"
            assert cost.modes(slow, abc, remote=False)["auto"][0] == "stream"  # a mirror
            # compute nodes without internet: download jobs fetch it whole, as the job says
            on_host = {**abc, "download_on_host": True}
            assert cost.modes(Link.from_config(abc["link"]), on_host, remote=True)["auto"] == (
                modes["download"]
            )


def test_durations_and_the_plans_lines():
    assert [duration_text(s) for s in (0.84, 42.2, 600, 9000)] == ["0.8 s", "42 s", "10 min",
                                                                     "2.5 h"]  # fmt: skip
    plan = {
        "cells": {"before": 4_042_976, "after": 200_000, "groups": 5322, "kept_whole": 1033,
                  "matrices": 24},
        "groups": "clusters", "transfer": "auto", "data_dir": "data/",
        "link": {"latency_ms": 30, "connection_mbps": 40, "total_mbps": 120},
        "matrices": [{"file_bytes": 6e9, "cached": i < 2} for i in range(24)],
        "modes": {"download": {"bytes": 132e9, "seconds": 1200, "files": {"download": 22}},
                  "stream": {"bytes": 9.1e9, "seconds": 300, "files": {"stream": 24},
                             "requests": 412_000},
                  "auto": {"bytes": 8.4e9, "seconds": 280, "files": {"cache": 2, "stream": 22}}},
        "disk": {"cache": {"download": 132e9, "stream": 0, "auto": 0}, "data": 17e9},
        "memory": {"largest_job": "subset_matrix WMB-10Xv3-MB", "largest_mb": 2345},
        "planning": {"bytes": 3.2e6, "requests": 480},
        "how": "read: ...",
    }  # fmt: skip
    cells, fetch, disk, how = plan_lines(plan)
    assert cells == ("200,000 of 4,042,976 cells (4.9%), 1,033 of 5,322 clusters kept whole; "
                     "24 matrix files needed (144 GB, 2 in the cache)")  # fmt: skip
    assert fetch.startswith("to fetch: download 132 GB ~20 min; stream 9.1 GB ~5 min in "
                            "412,000 requests; auto 8.4 GB ~5 min (cache 2, stream 22); "
                            "abc.transfer: auto; at abc.link 30 ms, 40 MB/s a connection")
    assert disk == ("disk: cache +0 bytes with auto (download: +132 GB), data/ ~17 GB; "
                    "memory: the largest job asks for 2,345 MB "
                    "(subset_matrix WMB-10Xv3-MB)")  # fmt: skip
    assert how == "how: read: ...; this plan read 3.2 MB in 480 requests"
    assert np.all([len(line) < 400 for line in (cells, fetch, disk, how)])


def test_a_matrix_counts_as_cached_if_the_cache_held_it_before_the_sample(mirror, tmp_path):
    """A full run plans while its subset jobs download: a copy newer than the sample was
    fetched by this run, and the plan (made "before the run") does not count it."""
    import os
    import shutil

    from abc_downsample.plan.card import make_plan
    from abc_downsample.release.manifest import Manifest

    picked = mirror["cells"][mirror["cells"]["feature_matrix_label"] == "WMB-10Xv3-HPF"]
    cells_csv = tmp_path / "cells.csv"
    picked.iloc[:40][["cell_label", "feature_matrix_label"]].to_csv(cells_csv, index=False)
    summary = tmp_path / "summary.csv"
    pd.DataFrame({"size": [100, 3], "selected": [37, 3], "kept_whole": [False, True]}).to_csv(
        summary, index=False
    )
    key = mirror["matrices"]["WMB-10Xv3-HPF"]["raw"]
    cache = tmp_path / "cache"
    (cache / key).parent.mkdir(parents=True)
    shutil.copy(mirror["root"] / key, cache / key)
    abc = abc_with_defaults({"bucket": str(mirror["root"]), "cache_dir": str(cache),
                             "endpoint_url": None})  # fmt: skip
    manifest = Manifest.load(next(mirror["root"].glob("releases/*/manifest.json")))
    sample_time = os.path.getmtime(cells_csv)
    plans = {}
    for label, when in (("before", sample_time - 60), ("after", sample_time + 60)):
        os.utime(cache / key, (when, when))
        plans[label] = make_plan(manifest, cells_csv, summary, cells_csv, abc,
                                 "cluster_alias", "WMB-10X", "data")  # fmt: skip
    before, after = plans["before"], plans["after"]
    assert before["matrices"][0]["cached"] and not after["matrices"][0]["cached"]
    assert before["modes"]["download"]["bytes"] == 0
    assert after["modes"]["download"]["bytes"] == (cache / key).stat().st_size
    assert before["modes"]["auto"]["files"] == {"cache": 1}
    assert after["modes"]["auto"]["files"] == {"stream": 1}  # a local mirror: streamed
    assert before["planning"]["bytes"] == 0  # nothing read from the bucket for it
    assert before["cells"]["after"] == 40 and before["memory"]["largest_mb"] > 0
    assert before["disk"]["cache"] == {"download": 0, "stream": 0, "auto": 0}
    size = (cache / key).stat().st_size
    assert after["disk"]["cache"] == {"download": size, "stream": 0, "auto": 0}
    dropped = make_plan(manifest, cells_csv, summary, cells_csv,
                        {**abc, "keep_matrices": False}, "cluster_alias", "WMB-10X", "data")
    assert dropped["disk"]["cache"]["download"] == size and not dropped["disk"]["kept"]
    assert "at a time (keep_matrices: false)" in plan_lines(dropped)[2]

    # download mode reads nothing of a matrix it has not fetched (each file fetched once):
    # stream and auto come from the manifest's size and the cell table's count
    (cache / key).unlink()
    blind = make_plan(manifest, cells_csv, summary, cells_csv, {**abc, "transfer": "download"},
                      "cluster_alias", "WMB-10X", "data",
                      cell_table=mirror["root"] / CELLS,
                      matrix_column="feature_matrix_label")  # fmt: skip
    assert blind["planning"] == {"bytes": 0, "requests": 0}
    assert blind["how"].startswith("read: the manifest, the cache and the cell table")
    matrix = blind["matrices"][0]
    assert matrix["file_rows"] == int((mirror["cells"]["feature_matrix_label"]
                                       == "WMB-10Xv3-HPF").sum())  # fmt: skip
    assert 0 < matrix["stream"]["bytes"] <= 2 * size and matrix["download"]["bytes"] == size


def test_a_matrix_whose_headers_cannot_be_read_is_estimated_and_warned_about(
    mirror, tmp_path, caplog
):
    """The plan never stops a run: the subset job will say what is wrong with the file."""
    from abc_downsample.plan.card import make_plan
    from abc_downsample.release.manifest import Manifest

    key = mirror["matrices"]["WMB-10Xv3-MB"]["raw"]
    size = (mirror["root"] / key).stat().st_size
    bucket = tmp_path / "bucket"
    (bucket / key).parent.mkdir(parents=True)
    (bucket / key).write_bytes(b"not an HDF5 file" * (size // 16 + 1))
    picked = mirror["cells"][mirror["cells"]["feature_matrix_label"] == "WMB-10Xv3-MB"]
    cells_csv = tmp_path / "cells.csv"
    picked.iloc[:30][["cell_label", "feature_matrix_label"]].to_csv(cells_csv, index=False)
    summary = tmp_path / "summary.csv"
    pd.DataFrame({"size": [60], "selected": [30], "kept_whole": [False]}).to_csv(summary)
    abc = abc_with_defaults({"bucket": str(bucket), "cache_dir": str(tmp_path / "cache"),
                             "endpoint_url": None})  # fmt: skip
    manifest = Manifest.load(next(mirror["root"].glob("releases/*/manifest.json")))
    with caplog.at_level("WARNING"):
        plan = make_plan(manifest, cells_csv, summary, cells_csv, abc, "cluster_alias",
                         "WMB-10X", "data", cell_table=mirror["root"] / CELLS,
                         matrix_column="feature_matrix_label")  # fmt: skip
    assert plan["how"].startswith("read: the manifest, the cache and the cell table")
    assert plan["modes"]["stream"]["bytes"] > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "could not be read" in warnings[0] and key in warnings[0]
