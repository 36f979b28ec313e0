"""Stratified sampling that keeps rare groups whole: the whole step, as a dataset's profile
says where its cells, groups and taxonomy are.

The flow: read the cell table once (only the needed columns; the sampled cells' full rows
come at the end from their own lines of the file) and the per-cell tables beside it (the
membership table holding the group key, the embedding table; see `side_tables`); filter,
group (a cell column or a taxonomy level), decide how many cells each group keeps
(`allocation`), draw that many cells per group (`drawing`), write the cell list, the tables
that explain it (`summaries`) and the sampled cells' full rows of the cell table, which the
final step takes its obs from instead of reading the cell table again.
Reproducibility does not depend on row order or threads (see `drawing`).
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from abc_downsample.atomic import atomic_path
from abc_downsample.cells_csv import CELL_LABEL, DATASET_LABEL, MATRIX
from abc_downsample.dataset.profile import Dataset, load_dataset
from abc_downsample.errors import AbcError, few
from abc_downsample.metadata.csv_out import write_csv
from abc_downsample.metadata.tables import (
    SampledTable,
    arrow_frame,
    as_arrow_strings,
    cell_table_columns,
    read_cell_table,
    read_cell_table_once,
    write_cell_rows,
)
from abc_downsample.metadata.taxonomy import read_taxonomy
from abc_downsample.sampling.coding import CellTable, check_columns, filter_mask
from abc_downsample.sampling.drawing import select_cells
from abc_downsample.sampling.selection import check_matchable, listed_cells, read_cell_list
from abc_downsample.sampling.side_tables import (
    UNASSIGNED,
    as_text_with,
    positions,
    require_columns,
    rows_for_labels,
)
from abc_downsample.sampling.summaries import (
    coverage_floor,
    group_summary,
    level_views,
    log_figures,
)

log = logging.getLogger(__name__)

# the settings that give a list of cells: exactly these cells; the population to sample
GIVEN = ("cells_file", "within")


def cell_columns(dataset: Dataset) -> list[str]:
    """The columns of downsampled_cells.csv (the keep columns where present), before the
    sampling group's own."""
    return list(dict.fromkeys([CELL_LABEL, dataset.cells.group, MATRIX, DATASET_LABEL,
                               *dataset.cells.keep]))  # fmt: skip


@dataclass
class Sample:
    """A sample and its explanation, ready to be written."""

    cells: pd.DataFrame  # cell_columns (+ the grouping column), sorted
    summary: pd.DataFrame  # one row per group
    levels: pd.DataFrame  # one row per taxonomy level and term
    rows: pa.Table  # the cells' rows of the cell table (every column, the group key joined)
    population: "Population"  # what the cell table held


def _selection(cell_lists, table: CellTable, dataset: Dataset, population) -> dict:
    """Mask of the cells each given list names (``cells_file``, ``within``), by setting."""
    masks = {}
    for cell_list in cell_lists:
        column = dataset.cells.label if cell_list.column == CELL_LABEL else cell_list.column
        keys = as_arrow_strings(table.cells[column])
        masks[cell_list.setting] = listed_cells(cell_list, keys, dataset.name)
        dropped = int((masks[cell_list.setting] & ~population).sum())
        if dropped:
            log.warning("%d cells of %s are excluded by sampling.filters", dropped,
                        cell_list.what)  # fmt: skip
    return masks


def _cell_list(table: CellTable, selected: np.ndarray, group: str, dataset) -> pd.DataFrame:
    """The selected cells' output columns, sorted by matrix then label."""
    c = dataset.cells
    renamed = {c.label: CELL_LABEL, c.matrix: MATRIX, c.dataset: DATASET_LABEL}
    keep = [k for k in c.keep if k in table.cells.columns]
    columns = dict.fromkeys([c.label, c.group, c.matrix, c.dataset, *keep, group])
    rows = np.flatnonzero(selected)
    out = {}
    for column in columns:
        if column in table.cells.columns and column != table.group_key:
            values = table.cells[column].iloc[rows].to_numpy(dtype=object)
        else:  # a taxonomy column, or the group key (with its unassigned group)
            coded_column = table.column(column)
            values = np.asarray(
                pd.Categorical.from_codes(coded_column.codes[rows], coded_column.categories)
            )
        out[renamed.get(column, column)] = values
    # Arrow sorts the text in C++ (0.03 s, pandas' sort_values 0.4 s for 200,000 rows); UTF-8
    # byte order is code point order, Python's own, and the sort is stable as pandas' is
    keys = pa.table({name: pa.array(out[name], pa.string()) for name in (MATRIX, CELL_LABEL)})
    order = pc.sort_indices(keys, sort_keys=[(MATRIX, "ascending"), (CELL_LABEL, "ascending")])
    return pd.DataFrame(out).take(order.to_numpy()).reset_index(drop=True)


def _required_columns(dataset: Dataset) -> dict[str, str]:
    """Cell-table column -> the profile key that names it."""
    cells = dataset.cells
    wanted = {cells.label: "cells.label", cells.matrix: "cells.matrix",
              cells.dataset: "cells.dataset"}  # fmt: skip
    if cells.membership is None:
        wanted[cells.group] = "cells.group"
    return wanted


def _check_cell_table(metadata_path, metadata_columns, dataset: Dataset) -> None:
    wanted = _required_columns(dataset)
    missing = [c for c in wanted if c not in metadata_columns]
    if missing:  # before sampling.cluster_column, which would be blamed for it
        raise AbcError(
            f"{metadata_path} lacks the column(s) {few(missing)} of the {dataset.name} cell "
            f"table (it has {few(list(metadata_columns))}): check abc.release and abc.dataset, "
            f"or {dataset.fix(wanted[missing[0]])}"
        )


@dataclass
class _CellRows:
    """The cell table's full rows, to take the sample's from. With a membership table the
    CellTable's rows are the cell table's rows ``kept`` (those with a group, or all), the
    group key joined from ``members`` (one per CellTable row, as text where a cell has
    none and the unassigned cells are kept)."""

    table: SampledTable
    kept: np.ndarray | None = None
    group: str | None = None
    members: pa.Array | None = None

    def keep_only_labels(self) -> None:
        """Drop the sampling columns but the labels (``take`` checks the rows by them)."""
        self.table.keep_only_labels()

    def take(self, selected: np.ndarray) -> pa.Table:
        rows = np.flatnonzero(selected)
        taken = self.table.take(rows if self.kept is None else self.kept[rows])
        if self.members is None:
            return taken
        return _with_column(taken, self.group, self.members.take(rows))


def _with_column(table: pa.Table, name: str, column) -> pa.Table:
    """``table`` with ``column`` as ``name``: in place of one of that name, else last."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


@dataclass
class Population:
    """What the cell table held before sampling, for the summary, the report and uns."""

    cells: int  # rows of the cell table
    without_group: int = 0  # cells the membership table gives no group
    unassigned: str = "drop"  # what became of them (sampling.unassigned)
    source: str = ""  # the membership table (directory/name of the release)

    def as_dict(self) -> dict:
        return {"cells": self.cells, "without_group": self.without_group,
                "unassigned": self.unassigned, "membership": self.source}  # fmt: skip


def _join_membership(cell_rows: _CellRows, membership_path, dataset, unassigned: str):
    """The group key from the membership table into the sampling columns and the cells'
    rows. Cells without a row there are left out, or kept as the group ``UNASSIGNED``."""
    m, group = dataset.cells.membership, dataset.cells.group
    require_columns(membership_path, {m.label: "cells.membership.label", group: "cells.group"},
                    dataset.fix)  # fmt: skip
    membership = read_cell_table(membership_path, [m.label, group], m.label)
    kept_columns = cell_rows.table.kept
    where = positions(kept_columns.column(dataset.cells.label), membership.column(m.label))
    absent = where.is_null().to_numpy(zero_copy_only=False)
    if absent.all():
        raise AbcError(f"no cell of the cell table is in {membership_path}: "
                       f"{dataset.fix('cells.membership')}")  # fmt: skip
    population = Population(len(absent), int(absent.sum()), unassigned, f"{m.directory}/{m.name}")
    if absent.any():
        verb = "left out" if unassigned == "drop" else f"kept as the group '{UNASSIGNED}'"
        log.warning("%d of %d cells have no %s in %s: %s (sampling.unassigned)",
                    absent.sum(), len(absent), group, population.source, verb)  # fmt: skip
    # the rows kept, where cells are left out (else all, not copied)
    kept = np.flatnonzero(~absent) if absent.any() and unassigned == "drop" else None
    values = membership.column(group).take(where if kept is None else where.take(kept))
    del membership, where  # before the kept rows are copied: a lower peak
    columns = _with_column(kept_columns if kept is None else kept_columns.take(kept), group, values)
    pa.default_memory_pool().release_unused()  # the side table's memory, back to the system
    members = as_text_with(values, UNASSIGNED) if absent.any() and unassigned == "keep" else values
    return columns, _CellRows(cell_rows.table, kept, group, members), population


def _load_table(metadata_path, taxonomy_paths, sampling, dataset, side, cell_lists=()):
    """Check the column names first (cheap), then read the cell table's sampling columns
    (the CellTable, as pandas); the sample's full rows are taken from the file later.
    ``cell_lists``: the given lists (``selection``), matched by label or sample id."""
    group, filters = _grouping(sampling, dataset), sampling.get("filters") or {}
    metadata_columns = cell_table_columns(metadata_path)
    _check_cell_table(metadata_path, metadata_columns, dataset)
    for cell_list in cell_lists:
        check_matchable(cell_list, metadata_columns, dataset.name, metadata_path)
    joined = [dataset.cells.group] if side.membership else []
    known = list(metadata_columns) + joined
    taxonomy_columns = list(dataset.taxonomy.columns)
    check_columns([group], known, taxonomy_columns, "sampling.cluster_column")
    check_columns(list(filters), known, taxonomy_columns, "sampling.filters column")
    by_id = [c.column for c in cell_lists if c.column != CELL_LABEL]  # abc_sample_id
    wanted = [*_required_columns(dataset), *dataset.cells.keep, group, *filters, *by_id]
    wanted = [c for c in wanted if c in metadata_columns]
    cell_rows = _CellRows(read_cell_table_once(metadata_path, wanted, dataset.cells.label))
    columns, population = cell_rows.table.kept, Population(cell_rows.table.kept.num_rows)
    unassigned = sampling.get("unassigned", "drop")
    if side.membership:
        columns, cell_rows, population = _join_membership(
            cell_rows, side.membership, dataset, unassigned
        )
    cells = arrow_frame(columns)
    key = dataset.cells.group
    if pa.types.is_integer(columns.schema.field(key).type) and cells[key].hasnans:
        cells[key] = cells[key].astype("Int64")  # unassigned cells kept: integers, not floats
    taxonomy = read_taxonomy(taxonomy_paths, dataset, cells[key])
    named = UNASSIGNED if unassigned == "keep" else None
    table = CellTable(cells, taxonomy, dataset.cells.group, metadata_path, named)
    return table, cell_rows, population


def _grouping(sampling: dict, dataset: Dataset) -> str:
    return sampling.get("cluster_column") or dataset.cells.group


@dataclass
class SideTables:
    """The per-cell tables beside the cell table, as local files (None: the profile has
    none)."""

    membership: Path | None = None
    embedding: Path | None = None


def sample_cells(metadata_path, taxonomy_paths, sampling: dict, dataset=None,
                 side: SideTables | None = None, on_population=None) -> Sample:  # fmt: skip
    """Read, filter, group and sample the cells as the ``sampling`` config says (or take
    the cells of ``sampling['cells_file']``; or sample among those of
    ``sampling['within']``), and explain the result. ``dataset`` is the
    profile (default: the config's); ``taxonomy_paths`` its taxonomy files (see
    ``taxonomy``); ``side`` its per-cell tables; ``on_population(matrices)``, called once
    the filters are applied, with the matrices (feature_matrix_label) the sample can take
    cells from (work that needs them may start)."""
    dataset, side = dataset or load_dataset(), side or SideTables()
    group, filters = _grouping(sampling, dataset), sampling.get("filters") or {}
    # the lists first: a wrong file is told before the cell table is read
    cell_lists = [read_cell_list(sampling[key], key) for key in GIVEN if sampling.get(key)]
    table, cell_rows, population = _load_table(
        metadata_path, taxonomy_paths, sampling, dataset, side, cell_lists
    )
    filtered = filter_mask(table, filters)
    given = _selection(cell_lists, table, dataset, filtered)
    cells, summary, levels, selected = _draw(table, group, filtered, sampling, dataset,
                                             given, on_population)  # fmt: skip
    # the sampling columns go before the sampled rows are parsed: a lower peak
    del table
    cell_rows.keep_only_labels()
    rows = _with_embedding(cell_rows.take(selected), side.embedding, dataset)
    return Sample(cells, summary, levels, rows, population)


def _draw(table: CellTable, group: str, population: np.ndarray, sampling: dict,
          dataset: Dataset, given: dict, on_population=None):  # fmt: skip
    """The cell list, its explanation and the mask of the selected cells. ``population``:
    the cells sampling.filters keep; ``given``: the masks of the given lists
    (``_selection``)."""
    if "within" in given:  # the population to sample from: the selection's cells
        population = population & given["within"]
    if on_population is not None:
        on_population(_values_in(table.cells[dataset.cells.matrix], population))
    groups = table.column(group)
    if (groups.codes[population] < 0).any():
        raise AbcError(
            f"some cells have no {group}: filter them out or choose another cluster_column"
        )
    n_groups = len(groups.categories)
    sizes = np.bincount(groups.codes[population], minlength=n_groups)
    labels = as_arrow_strings(table.cells[dataset.cells.label])
    if "cells_file" in given:  # exactly the listed cells (of the population)
        selected = given["cells_file"] & population
        counts = np.bincount(groups.codes[selected], minlength=n_groups)
    else:
        rows = np.flatnonzero(population)
        selected = np.zeros(len(table), dtype=bool)
        selected[rows], counts = select_cells(
            labels if len(rows) == len(table) else labels.take(rows),
            groups.codes[rows],
            n_groups,
            target=int(sampling["target_cells"]),
            min_size=int(sampling["min_cluster_size"]),
            strategy=sampling["strategy"],
            seed=int(sampling["seed"]),
            floor=int(sampling.get("min_cells_per_group") or 0),
        )
    summary = group_summary(group, groups, sizes > 0, sizes, counts, table)
    levels = level_views(table, groups.codes, n_groups, sizes, counts, population, selected,
                         coverage_floor(sampling))  # fmt: skip
    log_figures(summary, sampling)
    cells = _cell_list(table, selected, group, dataset)
    _check_one_gene_table(cells, dataset)
    return cells, summary, levels, selected


def _values_in(column: pd.Series, mask: np.ndarray) -> list[str]:
    """The distinct values of ``column`` where ``mask`` is set, sorted (a categorical's
    codes, not a string per cell)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = np.unique(column.cat.codes.to_numpy()[mask])
        return sorted(column.cat.categories[codes[codes >= 0]].astype(str))
    return sorted(set(column[mask].dropna().astype(str)))


def _with_embedding(rows: pa.Table, embedding_path, dataset: Dataset) -> pa.Table:
    """The sampled cells' rows with the atlas's 2-d coordinates of the embedding table."""
    if embedding_path is None:
        return rows
    e, columns = dataset.cells.embedding, list(dataset.cells.umap or [])
    wanted = {e.label: "cells.embedding.label", **dict.fromkeys(columns, "cells.umap")}
    require_columns(embedding_path, wanted, dataset.fix)
    found = rows_for_labels(embedding_path, e.label, columns, rows.column(dataset.cells.label))
    for name in columns:
        rows = _with_column(rows, name, found.column(name))
    return rows


def _check_one_gene_table(cells: pd.DataFrame, dataset: Dataset) -> None:
    """Matrices with different genes cannot be one AnnData: say how to sample one."""
    if dataset.genes is None:
        return  # the matrices' own genes: concat checks that they agree
    tables = {m: dataset.genes.table_for(m).name for m in cells[MATRIX].unique()}
    if len(set(tables.values())) > 1:
        first = sorted(tables)[0]
        raise AbcError(
            f"the sample spans matrices with different genes ({', '.join(sorted(tables))}): "
            f"sample one at a time, e.g. sampling.filters {{{MATRIX}: [{first}]}}"
        )


def write_sample(sample: Sample, cells_out, summary_out, levels_out, rows_out,
                 population_out) -> None:  # fmt: skip
    """Write the three tables, the cells' rows and the population record, atomically."""
    with atomic_path(population_out) as tmp:
        tmp.write_text(json.dumps(sample.population.as_dict()) + "\n")
    for frame, path in (
        (sample.cells, cells_out),
        (sample.summary, summary_out),
        (sample.levels, levels_out),
    ):
        with atomic_path(path) as tmp:
            write_csv(frame, tmp)
    with atomic_path(rows_out) as tmp:
        write_cell_rows(sample.rows, tmp)


def sample_to_files(metadata_path, taxonomy_paths, sampling, cells_out, summary_out, levels_out,
                    rows_out, population_out, dataset=None, side=None,
                    on_population=None):  # fmt: skip
    """The whole sampling step: read, sample, write; returns the ``Sample``."""
    for path in (rows_out, population_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    sample = sample_cells(metadata_path, taxonomy_paths, sampling, dataset, side,
                          on_population)  # fmt: skip
    write_sample(sample, cells_out, summary_out, levels_out, rows_out, population_out)
    return sample
