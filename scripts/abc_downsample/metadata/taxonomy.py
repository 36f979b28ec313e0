"""The taxonomy of a dataset: each group's term at every level, and the terms' colours.

One reader for every shape the atlas publishes, chosen by each file's header:
- the long tables, ``cluster_annotation_term_set`` (one row per level) and
  ``cluster_to_cluster_annotation_membership`` (one row per group and level, with the term's
  colour), pivoted here (WMB, WHB, HMBA);
- a pivoted view, one row per group and a column per level, with the colours in the same
  or a second table (the Aging mouse; WMB's ``views/``);
- none: the group is its own and only level (ASAP).
Every field is text except the group key: a term ``NA`` stays a string. A group without a
term at some level (WHB clusters without a neurotransmitter) has a missing value there.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.dataset.profile import Dataset
from abc_downsample.errors import AbcError, few
from abc_downsample.metadata.tables import cell_table_columns, read_indexed_csv, read_small_csv

GROUP = "cluster_alias"  # the group key of the atlas's taxonomy tables
SET_COLUMNS = ("label", "name", "order")
LONG_COLUMNS = (
    GROUP,
    "cluster_annotation_term_set_name",
    "cluster_annotation_term_name",
)
LONG_COLOR = "color_hex_triplet"
TERM_LABEL = "cluster_annotation_term_label"  # the membership's link to the term table


@dataclass
class TaxonomyTable:
    """Terms and colours per group (index: the group key), levels top first."""

    terms: pd.DataFrame
    colors: pd.DataFrame  # the same index; a column per level that has colours
    levels: tuple[str, ...]
    annotations: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of the result's obs: annotations, then levels."""
        return (*self.annotations, *self.levels)

    def term_colors(self, level: str) -> dict[str, str]:
        """{term: colour} of a level; a term takes the colour of its first group."""
        if level not in self.colors.columns:
            return {}
        table = pd.DataFrame({"term": self.terms[level], "color": self.colors[level]}).dropna()
        table = table[table["color"] != ""].drop_duplicates("term")
        return dict(zip(table["term"], table["color"], strict=True))


def read_taxonomy(paths, dataset: Dataset, group_keys=None, annotations=False) -> TaxonomyTable:
    """The taxonomy from its files (any order of the shapes above); with no files (a
    dataset without taxonomy) the group itself, from ``group_keys``, is the one level.
    The profile's levels must be there, its annotations too if ``annotations``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
    spec = dataset.taxonomy
    if not paths:
        return _flat(dataset.cells.group, group_keys)
    kinds = [(_kind(Path(p)), Path(p)) for p in paths]
    named = dict(kinds)
    pivoted = [path for kind, path in kinds if kind == "pivoted"]
    extra: tuple[str, ...] = ()
    if "membership" in named:
        terms, colors = _read_long(named["membership"], named.get("term_set"), dataset,
                                   named.get("terms"))  # fmt: skip
        # the long format's views (e.g. cluster_to_neurotransmitter): more annotations
        terms, colors, extra = _with_views(terms, colors, pivoted)
    else:
        terms = read_pivoted(pivoted[0])
        # the colours: a colour table of its own, or the pivoted view's colour columns
        color_table = read_pivoted(pivoted[-1]) if len(pivoted) > 1 else terms
        colors = _pivoted_colors(color_table, terms, spec)
    table = TaxonomyTable(terms, colors, spec.levels, (*spec.annotations, *extra))
    source = named.get("membership", paths[0])
    require_levels(table, source, dataset, table.columns if annotations else table.levels)
    return table


def require_levels(table: TaxonomyTable, source, dataset: Dataset, wanted) -> None:
    """The one check that the taxonomy has the profile's levels (and annotations)."""
    missing = [c for c in wanted if c not in table.terms.columns]
    if missing:
        raise AbcError(
            f"{source} lacks the taxonomy level(s) {few(missing)} (it has "
            f"{few(list(table.terms.columns))}): {dataset.fix('taxonomy.levels')}"
        )


def _flat(group: str, keys) -> TaxonomyTable:
    keys = pd.Index(pd.unique(pd.Series(keys if keys is not None else [])).astype(object))
    keys = keys[pd.notna(keys)]
    terms = pd.DataFrame({group: keys.astype(str)}, index=keys)
    return TaxonomyTable(terms, pd.DataFrame(index=keys), (group,))


def _kind(path: Path) -> str:
    header = cell_table_columns(path)
    if "cluster_annotation_term_set_name" in header:
        return "membership" if GROUP in header else "terms"
    if all(c in header for c in SET_COLUMNS) and GROUP not in header:
        return "term_set"
    return "pivoted"


def _read_text(path: Path, required) -> pd.DataFrame:
    return read_small_csv(path, required, dtype=str, keep_default_na=False)


def _keys_as_int(index: pd.Index) -> pd.Index:
    with contextlib.suppress(ValueError):  # non-numeric keys (user-made): keep as text
        return index.astype(np.int64)
    return index


def _read_long(membership: Path, term_set: Path | None, dataset: Dataset,
               term_table: Path | None = None):  # fmt: skip
    """Pivot the long membership table: one row per group, a column per term set. The
    colours are its own, or (newer releases) the term table's, joined by term label."""
    long = _read_text(membership, LONG_COLUMNS)
    if LONG_COLOR not in long.columns and term_table is not None:
        long[LONG_COLOR] = _term_colors(long, term_table)
    if term_set is not None:
        sets = _read_text(term_set, SET_COLUMNS)
        named = set(sets["name"])
        missing = [c for c in dataset.taxonomy.levels if c not in named]
        if missing:
            raise AbcError(
                f"{term_set} names no term set {few(missing)} (it has "
                f"{few(sorted(named))}): {dataset.fix('taxonomy.levels')}"
            )
    long = long.drop_duplicates([GROUP, "cluster_annotation_term_set_name"])
    keys = [GROUP, "cluster_annotation_term_set_name"]
    terms = long.set_index(keys)["cluster_annotation_term_name"].unstack()
    if LONG_COLOR in long.columns:
        colors = long.set_index(keys)[LONG_COLOR].unstack().reindex(terms.index)
    else:
        colors = pd.DataFrame(index=terms.index)
    terms.columns.name = colors.columns.name = None
    terms.index = colors.index = _keys_as_int(pd.Index(terms.index, name=GROUP))
    order = terms.index.argsort(kind="stable")
    return terms.iloc[order], colors.iloc[order]


def _term_colors(long: pd.DataFrame, term_table: Path) -> pd.Series:
    """Each membership row's colour from the term table, by the term's label."""
    if TERM_LABEL not in long.columns:
        return pd.Series("", index=long.index)  # no link to the term table: no colours
    terms = _read_text(term_table, ("label", LONG_COLOR)).drop_duplicates("label")
    colors = terms.set_index("label")[LONG_COLOR]
    return long[TERM_LABEL].map(colors).fillna("")


def _with_views(terms: pd.DataFrame, colors: pd.DataFrame, views: list[Path]):
    """Per-group tables beside the long ones (keyed by the group): their text columns join
    the terms as annotations, their ``<column>_color`` columns the colours."""
    added = []
    for path in views:
        view = read_pivoted(path)
        for column in view.columns:
            numbers = pd.to_numeric(view[column], errors="coerce").notna().all()
            if column.endswith("_color") or column in terms.columns or numbers:
                continue  # colours, a level's own column, a statistic (fraction_of_cells)
            terms[column] = view[column].reindex(terms.index)
            if f"{column}_color" in view.columns:
                colors[column] = view[f"{column}_color"].reindex(terms.index)
            added.append(column)
    return terms, colors, tuple(added)


def read_pivoted(path: Path) -> pd.DataFrame:
    table = read_indexed_csv(path, GROUP, dtype=str, keep_default_na=False)
    table.index = _keys_as_int(table.index)
    return table


def _pivoted_colors(table: pd.DataFrame, terms: pd.DataFrame, spec) -> pd.DataFrame:
    """A column per level with its colours, from ``<level>_color`` (or the profile's
    ``color_columns``) of ``table``; levels without one have none."""
    colors = pd.DataFrame(index=terms.index)
    for level in spec.columns:
        column = spec.color_column(level)
        if column in table.columns:
            colors[level] = table[column].reindex(terms.index)
    return colors
