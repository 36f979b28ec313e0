"""The taxonomy tables of the newer releases (2025-10 on), in their real shape.

What changed against WMB/WHB, reproduced here:
- ``cluster_to_cluster_annotation_membership`` has no ``number_of_cells`` and no
  ``color_hex_triplet``: colours are only in ``cluster_annotation_term``, counts only in
  ``cluster.csv``;
- ``cluster_annotation_term`` carries the set name, colour, term and set order, the parent
  term and, in some taxonomies, links to older ones (``CCN20230722_label``);
- ``cluster_annotation_term_set`` gained ``parent_term_set_label``; some taxonomies put
  ``name`` before ``label``;
- the cell's group is in ``cell_to_cluster_membership`` (not every cell has a row), its 2-D
  embedding in ``cell_2d_embedding_coordinates``;
- cluster labels are strings whose number is not the alias, and their zero padding follows
  the real number of terms (so it differs between taxonomies and, in one, between
  ``cluster.csv`` and the term table).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from abc_downsample.demo.common import cluster_sizes, random_colors


@dataclass(frozen=True)
class Level:
    name: str  # the term set's name, spelt as the taxonomy spells it
    code: str  # in term labels: CS<date>_<code>_<number>
    real_terms: int  # terms of the real taxonomy: the labels' zero padding


@dataclass(frozen=True)
class TaxonomyShape:
    directory: str  # metadata/<taxonomy>/<version>
    date: str  # CCN<date>_LEVEL_<i> term sets, CS<date>_... terms
    levels: tuple[Level, ...]  # top first; the last is the level cluster_alias names
    annotation: Level | None = None  # a term set outside the hierarchy, listed first (order 0)
    name_first: bool = False  # cluster_annotation_term_set: name before label
    cluster_pad: int | None = None  # cluster.csv padding, when it differs from the term table
    cross_links: tuple[str, ...] = ()  # cluster_annotation_term columns naming older taxonomies
    membership_label: bool = True  # cell_to_cluster_membership has a ``label`` column
    shared_colors: bool = False  # the two lowest levels reuse colours between terms

    def set_label(self, level: Level) -> str:
        if level is self.annotation:
            return f"CCN{self.date}_{level.code}"
        return f"CCN{self.date}_LEVEL_{self.levels.index(level)}"

    def term_label(self, level: Level, number: int, pad: int | None = None) -> str:
        width = pad or len(str(level.real_terms))
        return f"CS{self.date}_{level.code}_{number:0{width}d}"

    def above(self, level: Level) -> Level | None:
        """The level whose terms are ``level``'s parents (none for the top and annotation)."""
        if level is self.annotation or level is self.levels[0]:
            return None
        return self.levels[self.levels.index(level) - 1]

    @property
    def term_sets(self) -> tuple[Level, ...]:
        """Every term set in ``order``: the annotation first, then the levels top first."""
        return ((self.annotation,) if self.annotation else ()) + self.levels


def build_clusters(
    rng: np.random.Generator,
    shape: TaxonomyShape,
    parents: list[tuple[str, ...]],
    leaf_name: Callable[[tuple[str, ...], int], str],
    n_cells: int,
    aliases: Callable[[np.random.Generator, int], list],
) -> pd.DataFrame:
    """One row per cluster of the lowest level, in taxonomy order: ``cluster_alias``,
    ``label`` (as in ``cluster.csv``), ``number_of_cells`` and the term of every level.

    ``parents`` holds the terms above the lowest level, one tuple per lowest parent (top
    first); each gets at least one cluster, named ``leaf_name(parent, k)`` (k from 1).
    ``aliases(rng, n)`` gives the clusters' aliases: never derivable from their labels.
    """
    sizes = _at_least(cluster_sizes(rng, n_cells), len(parents))
    owner = np.concatenate([np.arange(len(parents)), rng.integers(0, len(parents), len(sizes))])
    owner = np.sort(owner[: len(sizes)])
    rows, count = [], {}
    for number, (index, size) in enumerate(zip(owner, rng.permutation(sizes), strict=True), 1):
        parent = parents[index]
        count[index] = count.get(index, 0) + 1
        terms = (*parent, leaf_name(parent, count[index]))
        label = shape.term_label(shape.levels[-1], number, shape.cluster_pad)
        rows.append([label, int(size), *terms])
    names = [level.name for level in shape.levels]
    table = pd.DataFrame(rows, columns=["label", "number_of_cells", *names])
    table.insert(0, "cluster_alias", aliases(rng, len(table)))
    return table


def _at_least(sizes: np.ndarray, n: int) -> np.ndarray:
    """Split the biggest clusters in two until there are ``n`` (the total stays)."""
    sizes = list(sizes)
    while len(sizes) < n and max(sizes) > 1:
        big = sizes.pop(int(np.argmax(sizes)))
        sizes += [big // 2, big - big // 2]
    return np.array(sizes, dtype=np.int64)


def taxonomy_tables(
    rng: np.random.Generator, shape: TaxonomyShape, clusters: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """``cluster``, ``cluster_annotation_term_set``, ``cluster_annotation_term`` and
    ``cluster_to_cluster_annotation_membership`` of ``clusters`` (``build_clusters``, plus
    a column for the annotation set if the shape has one)."""
    terms = _terms(rng, shape, clusters)
    label_of = {(t["cluster_annotation_term_set_name"], t["name"]): t["label"] for t in terms}
    membership = [
        (label_of[(level.name, term)], level.name, term, alias, shape.set_label(level))
        for level in shape.term_sets
        for alias, term in zip(clusters["cluster_alias"], clusters[level.name], strict=True)
    ]
    return {
        "cluster": clusters[["label", "cluster_alias", "number_of_cells"]],
        "cluster_annotation_term_set": _term_sets(shape),
        "cluster_annotation_term": pd.DataFrame(terms),
        "cluster_to_cluster_annotation_membership": pd.DataFrame(membership, columns=[
            "cluster_annotation_term_label", "cluster_annotation_term_set_name",
            "cluster_annotation_term_name", "cluster_alias", "cluster_annotation_term_set_label",
        ]),  # fmt: skip
    }


def _term_sets(shape: TaxonomyShape) -> pd.DataFrame:
    rows = []
    for order, level in enumerate(shape.term_sets):
        above = shape.above(level)
        rows.append({
            "label": shape.set_label(level),
            "name": level.name,
            "description": f"{level.name} level of the taxonomy",
            "order": order,
            "parent_term_set_label": shape.set_label(above) if above else "",
        })  # fmt: skip
    table = pd.DataFrame(rows)
    if shape.name_first:
        table = table[["name", "label", "description", "order", "parent_term_set_label"]]
    return table


def _terms(rng: np.random.Generator, shape: TaxonomyShape, clusters: pd.DataFrame) -> list:
    """The rows of ``cluster_annotation_term``, set by set, terms in taxonomy order."""
    rows, label_of = [], {}
    for set_order, level in enumerate(shape.term_sets):
        names = list(dict.fromkeys(clusters[level.name]))
        colors = _colors(rng, shape, level, names)
        above = shape.above(level)
        parent_of = {}
        if above:
            parent_of = dict(zip(clusters[level.name], clusters[above.name], strict=True))
        for number, name in enumerate(names, 1):
            label = shape.term_label(level, number)
            label_of[(level.name, name)] = label
            parent = parent_of.get(name, "")
            row = {
                "label": label,
                "name": name,
                "cluster_annotation_term_set_label": shape.set_label(level),
                "cluster_annotation_term_set_name": level.name,
                "color_hex_triplet": colors[name],
                "term_order": number - 1,
                "term_set_order": set_order,
                "parent_term_label": label_of[(above.name, parent)] if above else "",
                "parent_term_name": parent,
                "parent_term_set_label": shape.set_label(above) if above else "",
            }
            for link in shape.cross_links:  # only some terms map to the older taxonomy
                older = link.removesuffix("_label").replace("CCN", "CS")
                row[link] = f"{older}_{level.code}_{number:04d}" if number % 3 else ""
            rows.append(row)
    return rows


def _colors(rng, shape: TaxonomyShape, level: Level, names: list[str]) -> dict[str, str]:
    colors = random_colors(rng, names)
    if shape.shared_colors and level in shape.levels[-2:]:
        for k in range(3, len(names), 4):  # "1,385 colours for 1,386 supertypes"
            colors[names[k]] = colors[names[k - 1]]
    return colors


def cell_tables(
    rng: np.random.Generator,
    shape: TaxonomyShape,
    labels: np.ndarray,
    aliases: np.ndarray,
    clusters: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """``cell_to_cluster_membership`` and ``cell_2d_embedding_coordinates`` of the cells
    that have a group (``labels``, ``aliases``), in an order of their own: a reader must
    join on ``cell_label``."""
    order = rng.permutation(len(labels))
    membership = pd.DataFrame({"cell_label": labels[order], "cluster_alias": aliases[order]})
    if shape.membership_label:
        label_of = dict(zip(clusters["cluster_alias"], clusters["label"], strict=True))
        membership["label"] = membership["cluster_alias"].map(label_of)
    again = rng.permutation(len(labels))
    embedding = pd.DataFrame(
        {
            "cell_label": labels[again],
            "x": np.round(rng.normal(0, 10, len(labels)), 6),
            "y": np.round(rng.normal(0, 10, len(labels)), 6),
        }
    )
    return {"cell_to_cluster_membership": membership, "cell_2d_embedding_coordinates": embedding}


def integer_aliases(rng: np.random.Generator, n: int) -> list[int]:
    """Aliases scattered over a wider range than the clusters (Consensus: 6,721 clusters,
    aliases above 16,000), in no relation to the labels' numbers."""
    return [int(a) for a in rng.permutation(rng.choice(3 * n + 20, n, replace=False) + 1)]
