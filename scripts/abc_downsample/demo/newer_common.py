"""What the newer datasets are built from: a cell population split into the cell table and
the matrices' extra rows, groups from a membership table that leaves some cells out,
gzip-4 matrices with shuffled rows, and the side tables every newer metadata directory
holds (``value_sets``, ``views/example_gene_expression``)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.demo.common import (
    csv_bytes,
    random_counts,
    write_bytes,
    write_raw_and_log2,
)
from abc_downsample.demo.newer_taxonomy import (
    TaxonomyShape,
    build_clusters,
    cell_tables,
    taxonomy_tables,
)
from abc_downsample.errors import AbcError

# the new h5ad builder's storage (common.STORAGE_FILTERS)
STORAGE = "gzip4"
EXTRA_EVERY = 25  # a matrix holds one cell absent from the cell table for every 25 present


def population(
    rng: np.random.Generator,
    shares: dict[str, float],
    n_cells: int,
    make_cells: Callable[[np.random.Generator, np.ndarray], pd.DataFrame],
) -> pd.DataFrame:
    """Every cell of the dataset's matrices: ``make_cells(rng, matrix_of_each_cell)`` rows,
    the first ``n_cells`` in the cell table (``_in_metadata``), the others only in a
    matrix (at least two per matrix). ``_matrix`` is each row's feature_matrix_label."""
    listed = _spread(rng, shares, n_cells)
    counts = pd.Series(listed).value_counts()
    extra = np.repeat(list(shares), [max(2, counts.get(m, 0) // EXTRA_EVERY) for m in shares])
    matrix_of = np.concatenate([listed, extra])
    cells = make_cells(rng, matrix_of)
    if not cells["cell_label"].is_unique:
        raise AbcError("synthetic cell labels collide: choose another synthetic.seed")
    cells["_matrix"] = matrix_of
    cells["_in_metadata"] = np.arange(len(cells)) < n_cells
    return cells


def _spread(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    """The matrix of each of ``n`` cells: two in every matrix, the rest by share."""
    labels = np.array(list(shares))
    p = np.array(list(shares.values()), dtype=float)
    rest = labels[rng.choice(len(labels), n - 2 * len(labels), p=p / p.sum())]
    return rng.permutation(np.concatenate([np.repeat(labels, 2), rest]))


def groups(
    rng: np.random.Generator,
    shape: TaxonomyShape,
    cells: pd.DataFrame,
    assigned: float,
    parents: list[tuple[str, ...]],
    leaf_name: Callable[[tuple[str, ...], int], str],
    aliases: Callable[[np.random.Generator, int], list],
    annotate: Callable[[np.random.Generator, pd.DataFrame], pd.Series] | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Clusters for a share ``assigned`` of ``cells`` (the cell table) and the taxonomy's
    tables: (clusters, {table name: table}). A share below 1 leaves at least one cell
    without a group. ``annotate`` gives the annotation set's term per cluster."""
    n = len(cells)
    n_assigned = n if assigned >= 1 else min(n - 1, round(n * assigned))
    chosen = np.sort(rng.choice(n, n_assigned, replace=False))
    clusters = build_clusters(rng, shape, parents, leaf_name, n_assigned, aliases)
    if annotate is not None:
        clusters[shape.annotation.name] = annotate(rng, clusters)
    alias_of_cell = rng.permutation(
        np.repeat(clusters["cluster_alias"].to_numpy(object), clusters["number_of_cells"])
    )
    labels = cells["cell_label"].to_numpy(object)[chosen]
    tables = taxonomy_tables(rng, shape, clusters)
    tables.update(cell_tables(rng, shape, labels, alias_of_cell, clusters))
    return clusters, tables


def write_tables(root: Path, directory: str, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Write ``<directory>/<name>.csv`` for every table; return the keys."""
    keys = []
    for name, table in tables.items():
        key = f"{directory}/{name}.csv"
        write_bytes(root / key, csv_bytes(table))
        keys.append(key)
    return keys


def write_matrices(
    root: Path,
    rng: np.random.Generator,
    directory: str,
    cells: pd.DataFrame,
    obs_columns: list[str],
    genes: pd.DataFrame,
) -> dict[str, dict]:
    """``<label>-raw.h5ad`` and ``-log2.h5ad`` per matrix of ``cells`` (``population``):
    its rows shuffled, obs indexed by cell_label, var by gene_identifier, X gzip-4."""
    var = genes.set_index("gene_identifier")
    written = {}
    for label in dict.fromkeys(cells["_matrix"]):
        mine = cells[cells["_matrix"] == label]
        mine = mine.iloc[rng.permutation(len(mine))]
        obs = mine.set_index("cell_label")[obs_columns].astype(str)
        counts = random_counts(rng, len(obs), len(var))
        paths = {v: f"{directory}/{label}-{v}.h5ad" for v in ("raw", "log2")}
        write_raw_and_log2(root, paths.get, obs, var, counts, STORAGE)
        written[label] = {
            **paths,
            "n_rows": len(mine),
            "n_extra": int((~mine["_in_metadata"]).sum()),
        }
    return written


def dataset_info(release: str, metadata: str, genes: str, taxonomy: str, matrices: dict,
                 cells: pd.DataFrame, assigned, files: list[str]) -> dict:  # fmt: skip
    """What tests need of a newer dataset (``write_newer``'s info): its cell table in the
    ``metadata`` directory lists ``cells``, those of them in ``assigned`` (cell labels)
    have a group; ``genes`` is its gene table's key, ``files`` every key it wrote."""
    return {
        "release": release,
        "cells": f"{metadata}/cell_metadata.csv",
        "genes": genes,
        "taxonomy": taxonomy,
        "matrices": matrices,
        "n_cells": len(cells),
        "n_assigned": int(cells["cell_label"].isin(assigned).sum()),
        "files": files,
    }


def matrix_keys(matrices: dict[str, dict]) -> list[str]:
    return [info[v] for info in matrices.values() for v in ("raw", "log2")]


def rows_for(rng: np.random.Generator, keys: np.ndarray, table: pd.DataFrame, column: str):
    """For every key, the position of a random row of ``table`` whose ``column`` is it
    (a cell's library among those of its matrix)."""
    rows = np.empty(len(keys), dtype=np.int64)
    for key in dict.fromkeys(keys):
        where = np.flatnonzero(keys == key)
        rows[where] = rng.choice(np.flatnonzero(table[column].to_numpy() == key), len(where))
    return rows


def barcodes_repeat(cells: pd.DataFrame, sample: str) -> None:
    """Give two cells of different samples the same barcode (labels stay unique), as the
    real tables have; ``cell_label`` must be rebuilt by the caller."""
    first = cells[sample].iloc[0]
    other = np.flatnonzero(cells[sample].to_numpy() != first)
    if other.size:
        cells.loc[cells.index[other[-1]], "cell_barcode"] = cells["cell_barcode"].iloc[0]


def alignment_job_ids(rng: np.random.Generator, n: int) -> list[str]:
    """SEA-AD's ``alignment_job_id``: mostly integers, some 40-hex hashes (pandas then
    warns of mixed types; read it as str)."""
    numbers = rng.integers(1_100_000_000, 1_400_000_000, n)
    hashes = rng.integers(0, 16, (n, 40))
    is_hash = rng.random(n) < 0.3
    return [
        "".join(f"{d:x}" for d in digits) if h else str(number)
        for number, digits, h in zip(numbers, hashes, is_hash, strict=True)
    ]


def dates(rng: np.random.Generator, n: int, years: tuple[int, int]) -> list[str]:
    """``YYMMDD`` dates within ``years`` (two-digit, inclusive), as in library labels."""
    year = rng.integers(years[0], years[1] + 1, n)
    month, day = rng.integers(1, 13, n), rng.integers(1, 29, n)
    return [f"{y:02d}{m:02d}{d:02d}" for y, m, d in zip(year, month, day, strict=True)]


def value_sets(fields: dict[str, tuple[str, list[str]]]) -> pd.DataFrame:
    """``value_sets.csv``: the allowed values of some columns ({field: (table, values)})."""
    rows = [
        {"label": value, "field": field, "table": table, "description": f"{field} {value}",
         "order": order, "external_identifier": "", "parent_label": "",
         "color_hex_triplet": "", "comment": ""}
        for field, (table, values) in fields.items()
        for order, value in enumerate(values)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def example_expression(rng: np.random.Generator, labels, symbols) -> pd.DataFrame:
    """``views/example_gene_expression.csv``: a few genes for some cells, keyed by
    cell_label (a table with cell labels that is not the cell table)."""
    labels = list(labels)[:50]
    table = pd.DataFrame({"cell_label": labels})
    for symbol in list(symbols)[:3]:
        table[symbol] = np.round(rng.exponential(1.0, len(labels)), 4)
    return table
