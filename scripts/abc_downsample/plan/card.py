"""The cost before the run (``snakemake plan``): after sampling and before any matrix is
fetched, what the run will fetch in each transfer mode and how long that takes at the
configured link, what it will put on disk, and the memory of its largest job. A few lines
for the terminal and ``data/plan.txt``, the same figures as JSON for the report's card and
for comparing with what the run then measured (``benchmarks/bench_plan.py``)."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from abc_downsample import resources as res
from abc_downsample.atomic import atomic_path
from abc_downsample.cache.layout import cache_path
from abc_downsample.cache.store import LocalStore, local_root
from abc_downsample.cache.verify import is_trusted
from abc_downsample.errors import AbcError
from abc_downsample.metadata.tables import read_cell_table
from abc_downsample.plan.matrices import (
    H5AD_BYTES,
    HOW,
    HOW_MANIFEST,
    Fetch,
    MatrixCost,
    manifest_cost,
    matrix_cost,
)
from abc_downsample.run_messages import cells_and_groups, groups_name, read_sample_figures
from abc_downsample.stream.plan import Link
from abc_downsample.units import size_text

MODES = ("download", "stream", "auto")
log = logging.getLogger(__name__)


def make_plan(manifest, cells_csv, summary_csv, rows_path, abc: dict, cluster_column: str,
              dataset: str, data_dir: str, cell_table=None,
              matrix_column: str | None = None) -> dict:  # fmt: skip
    """The plan of the run whose sample is ``cells_csv`` (JSON-ready); ``rows_path`` is the
    sample's rows of the cell table, ``data_dir`` where results go (output.dir);
    ``cell_table`` (with its ``matrix_column``) gives the files' cells where no header is
    read."""
    counts = res.sample_counts(cells_csv)
    link = Link.from_config(abc["link"])
    stores = _Stores(abc, cell_table, matrix_column)
    drawn = os.path.getmtime(cells_csv)
    costs = [_matrix(manifest, stores, abc, m, n, drawn) for m, n in sorted(counts.items())]
    figures = read_sample_figures(summary_csv, cells_csv)
    per_matrix = [cost.modes(link, abc, stores.remote) for cost in costs]
    modes = {mode: _mode(costs, per_matrix, mode) for mode in MODES}
    return {
        "dataset": dataset,
        "release": manifest.version,
        "variant": abc["variant"],
        "transfer": abc["transfer"],
        "groups": groups_name(cluster_column),
        "cells": figures,
        "link": dict(abc["link"]),
        "matrices": [_matrix_json(c, m) for c, m in zip(costs, per_matrix, strict=True)],
        "modes": modes,
        "disk": _disk(costs, per_matrix, rows_path, abc["keep_matrices"]),
        "memory": _memory(costs, cells_csv, abc, figures["after"]),
        "planning": _planning(costs),
        "how": HOW if all(c.from_headers for c in costs) else HOW_MANIFEST,
        "data_dir": f"{data_dir}/",
    }


class _Stores:
    """Where the plan reads a matrix's headers (the cached copy, else the bucket), and the
    cell table's cells per matrix (read once, when a matrix is estimated without them)."""

    def __init__(self, abc: dict, cell_table=None, matrix_column: str | None = None):
        self.abc = abc
        self.cache = LocalStore(Path(abc["cache_dir"]).resolve())
        self._bucket = None
        self.cell_table, self.matrix_column = cell_table, matrix_column
        self._file_cells = None

    def file_cells(self, matrix: str) -> int:
        if self._file_cells is None:
            self._file_cells = {}
            if self.cell_table is not None:
                column = read_cell_table(self.cell_table, [self.matrix_column],
                                         self.matrix_column).column(0)  # fmt: skip
                counts = pc.value_counts(column.combine_chunks().cast(pa.string()))
                self._file_cells = {str(v["values"]): int(v["counts"]) for v in counts.to_pylist()}
        return self._file_cells.get(matrix, 0)

    @property
    def bucket(self):
        if self._bucket is None:
            from abc_downsample.cache.store import store_from_config

            self._bucket = store_from_config(self.abc, "stream")
        return self._bucket

    @property
    def remote(self) -> bool:
        """Whether auto weighs stream against download: an S3 bucket, not a local mirror
        (as the subset job decides it)."""
        return local_root(self.abc["bucket"]) is None


def _matrix(manifest, stores: _Stores, abc: dict, matrix: str, cells: int,
            drawn: float) -> MatrixCost:  # fmt: skip
    """A matrix's cost. It counts as cached if the cache held it before the sample was
    drawn (``drawn``: the sample's time): a full run plans while its subset jobs fetch.
    Download mode reads nothing of a matrix it has not fetched (each file is fetched
    once): its stream and auto figures come from the manifest and the cell table."""
    entry = manifest.matrix_file(matrix, abc["variant"])
    held = is_trusted(abc["cache_dir"], entry, "size")  # any copy of the right size
    before = held and cache_path(abc["cache_dir"], entry.relative_path).stat().st_mtime < drawn
    merge_gap = abc["stream"]["merge_gap_kb"] * 1024
    if held or abc["transfer"] != "download":
        try:
            cost = matrix_cost(
                stores.cache if held else stores.bucket, entry.relative_path, entry.size,
                matrix, cells, cached=before, merge_gap=merge_gap,
                concurrency=abc["stream"]["max_concurrency"],
            )  # fmt: skip
            return replace(cost, planning=Fetch()) if held else cost  # the cache's: free
        except (AbcError, OSError) as err:  # the plan never stops a run: its job will say
            log.warning("plan: the headers of %s could not be read (%s): estimated from the "
                        "manifest", entry.relative_path, err)  # fmt: skip
    return manifest_cost(entry.relative_path, entry.size, matrix, cells,
                         file_cells=stores.file_cells(matrix), merge_gap=merge_gap)


def _matrix_json(cost: MatrixCost, modes: dict) -> dict:
    return {
        "matrix": cost.matrix,
        "cells": cost.cells,
        "file_rows": cost.file_rows,
        "file_bytes": cost.file_bytes,
        "cached": cost.cached,
        "stream_requests": cost.opening.requests + cost.rows.requests,
        **{mode: {"how": how, "bytes": n, "seconds": round(s, 3)}
           for mode, (how, n, s) in modes.items()},
    }  # fmt: skip


def _mode(costs, per_matrix: list[dict], mode: str) -> dict:
    chosen = [modes[mode] for modes in per_matrix]
    requests = sum(c.opening.requests + c.rows.requests for c in costs) if mode == "stream" else 0
    return {
        "bytes": sum(n for _, n, _ in chosen),
        "seconds": round(sum(s for _, _, s in chosen), 3),
        "files": dict(Counter(how for how, _, _ in chosen)),
        "requests": requests,
    }


def _disk(costs, per_matrix: list[dict], rows_path, keep: bool) -> dict:
    """Bytes each mode adds to the cache (the matrices it downloads; with keep_matrices
    false each is deleted after use: the largest), and what data/ will hold: the subsets,
    and the result (their X, the cells' rows of the cell table, the UMAP)."""
    rows_bytes = os.path.getsize(rows_path) if os.path.exists(rows_path) else 0
    cells = sum(c.cells for c in costs)
    result = sum(c.selected_bytes for c in costs) + 8 * (cells + 1) + rows_bytes + 16 * cells
    cache = {}
    for mode in MODES:
        fetched = [c.file_bytes for c, m in zip(costs, per_matrix, strict=True)
                   if m[mode][0] == "download"]  # fmt: skip
        cache[mode] = sum(fetched) if keep else max(fetched, default=0)
    return {
        "cache": cache,
        "kept": keep,
        "data": sum(c.subset_bytes for c in costs) + result + H5AD_BYTES,
    }


def _memory(costs, cells_csv, abc: dict, n_cells: int) -> dict:
    """The memory each job will ask for (``resources``, as the Snakefile sizes them): every
    subset job's and concat's, and the largest."""
    jobs = {
        f"subset_matrix {cost.matrix}": res.subset_job_mem_mb(
            cache_path(abc["cache_dir"], cost.key) if cost.cached else None,
            cost.file_bytes, cells_csv, cost.matrix,
        )  # fmt: skip
        for cost in costs
    }
    jobs["concat"] = res.concat_mem_mb_for(n_cells)
    largest = max(jobs, key=jobs.get)
    return {"largest_job": largest, "largest_mb": jobs[largest], "jobs": jobs}


def _planning(costs) -> dict:
    """What the plan read from the bucket."""
    total = sum((c.planning for c in costs), Fetch())
    return {"bytes": total.nbytes, "requests": total.requests}


# ---- the words ------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """Seconds for people: "0.8 s", "42 s", "12 min", "2.4 h"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def mode_text(mode: dict) -> str:
    """A transfer mode's cost (``plan["modes"][name]``): "1.2 GB ~4 min"."""
    return f"{size_text(mode['bytes'])} ~{duration_text(mode['seconds'])}"


def plan_lines(plan: dict) -> list[str]:
    """The plan in a few lines (each printed after ``abc-downsample: plan:``)."""
    modes, disk, memory = plan["modes"], plan["disk"], plan["memory"]
    matrices, link, chosen = plan["matrices"], plan["link"], plan["transfer"]
    in_cache = sum(m["cached"] for m in matrices)
    total = size_text(sum(m["file_bytes"] for m in matrices))
    auto_files = ", ".join(f"{how} {n}" for how, n in sorted(modes["auto"]["files"].items()))
    return [
        f"{cells_and_groups(plan['cells'], plan['groups'])}; {len(matrices)} matrix files "
        f"needed ({total}, {in_cache} in the cache)",
        f"to fetch: download {mode_text(modes['download'])}; stream "
        f"{mode_text(modes['stream'])} in {modes['stream']['requests']:,} requests; auto "
        f"{mode_text(modes['auto'])} ({auto_files}); "
        f"abc.transfer: {chosen}; at abc.link {link['latency_ms']:g} ms, "
        f"{link['connection_mbps']:g} MB/s a connection, {link['total_mbps']:g} MB/s in all "
        "(the jobs' waits for the bucket, added up)",
        f"disk: cache +{size_text(disk['cache'][chosen])} with {chosen} (download: "
        f"+{size_text(disk['cache']['download'])})"
        f"{'' if disk.get('kept', True) else ' at a time (keep_matrices: false)'}, "
        f"{plan['data_dir']} ~{size_text(disk['data'])}; memory: the largest job asks for "
        f"{memory['largest_mb']:,} MB ({memory['largest_job']})",
        f"how: {plan['how']}; this plan read {size_text(plan['planning']['bytes'])} in "
        f"{plan['planning']['requests']:,} requests",
    ]


def write_plan(plan: dict, text_path, json_path) -> list[str]:
    """The plan's lines to ``text_path`` and its figures to ``json_path``; returns the
    lines."""
    lines = plan_lines(plan)
    with atomic_path(text_path) as tmp:
        Path(tmp).write_text("".join(f"plan: {line}\n" for line in lines), encoding="utf-8")
    with atomic_path(json_path) as tmp:
        Path(tmp).write_text(json.dumps(plan, indent=1) + "\n", encoding="utf-8")
    return lines


def read_plan(path) -> dict | None:
    """The plan's JSON, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

