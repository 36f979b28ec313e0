"""A dataset's profile inferred from the release, for datasets without a profile file.

Every 10x dataset of the atlas follows the same rules (``config/datasets/README.md``):
``metadata/<dataset>/cell_metadata`` names each cell's matrix; its group key is a
``cluster_alias`` column of the cell table or of ``cell_to_cluster_membership`` in the
dataset's taxonomy directory, whose ``cluster_annotation_term_set`` lists the levels. What
the manifest cannot tell, a few header lines and the (small) term-set table do: they are
read from the cache if it holds them, else from the bucket (one ranged request each).

``infer_profile`` returns the profile as a profile file would hold it, and the reasons for
each choice; a choice it cannot make is one ``AbcError`` naming it.
"""

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from abc_downsample.cells_csv import CELL_LABEL, DATASET_LABEL, MATRIX
from abc_downsample.errors import AbcError, few
from abc_downsample.release.manifest import FileEntry, Manifest

CELL_TABLE = "cell_metadata"
MEMBERSHIP = "cell_to_cluster_membership"
TERM_SET = "cluster_annotation_term_set"
LONG_MEMBERSHIP = "cluster_to_cluster_annotation_membership"
TERMS = "cluster_annotation_term"
EMBEDDING = "cell_2d_embedding_coordinates"
GENES = "gene"
TAXONOMY_TABLES = (MEMBERSHIP, TERM_SET, LONG_MEMBERSHIP)
# the atlas's column names, alike in every 10x dataset's tables (our cell list keeps them)
LABEL = CELL_LABEL
GROUP = "cluster_alias"
UMAP = ("x", "y")
# words of directory names that say nothing of which dataset they belong to
GENERIC = re.compile(r"^(taxonomy|10x\w*|ccn\d+|\d+)$", re.IGNORECASE)
# a term set outside the hierarchy: the neurotransmitter annotation
ANNOTATION = re.compile(r"neurotransmitter|^nt$", re.IGNORECASE)


@dataclass
class ReleaseReader:
    """What inference may read: the manifest, and for a listed file its first bytes
    (``head``) or all of it (``whole``, small files only)."""

    manifest: Manifest
    head: Callable[[FileEntry], bytes]
    whole: Callable[[FileEntry], bytes]
    tables: dict = field(init=False)

    def __post_init__(self):
        self.tables = self.manifest.metadata_tables()

    def table(self, directory: str, name: str) -> FileEntry | None:
        return self.tables.get(directory, {}).get(name)

    def header(self, entry: FileEntry) -> list[str]:
        first = self.head(entry).split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
        return next(csv.reader([first]), [])

    def rows(self, entry: FileEntry) -> list[dict]:
        text = self.whole(entry).decode("utf-8", "replace")
        return list(csv.DictReader(io.StringIO(text)))


def infer_profile(name: str, release: ReleaseReader) -> tuple[dict, list[str]]:
    """The profile of dataset ``name`` (a directory of the manifest) and why."""
    why: list[str] = []
    cells_entry = _cell_table(name, release)
    cell_columns = release.header(cells_entry)
    _require(cell_columns, (LABEL, MATRIX, DATASET_LABEL), cells_entry, name)
    why.append(f"cells: {cells_entry.relative_path}, each naming its matrix in {MATRIX}")
    taxonomy_dir = _taxonomy_directory(name, release, why)
    membership = _membership(taxonomy_dir, cell_columns, cells_entry, name, release, why)
    return {
        "name": name,
        "title": f"{name} (profile inferred from release {release.manifest.version})",
        "confidence": "inferred",
        "cells": {
            "table": {"directory": name, "name": CELL_TABLE},
            "label": LABEL,
            "matrix": MATRIX,
            "dataset": DATASET_LABEL,
            "group": GROUP,
            "membership": membership,
            "keep": [],
            **_embedding(taxonomy_dir, cell_columns, release, why),
        },
        "taxonomy": _taxonomy(taxonomy_dir, name, release, why),
        "genes": _genes(name, release, why),
    }, why


def _cell_table(name: str, release: ReleaseReader) -> FileEntry:
    entry = release.table(name, CELL_TABLE)
    if entry is None:
        with_cells = sorted(d for d, tables in release.tables.items()
                            if CELL_TABLE in tables and "10x" in d.lower())  # fmt: skip
        raise AbcError(
            f"abc.dataset {name!r} has no profile in config/datasets and release "
            f"{release.manifest.version} has no metadata/{name}/{CELL_TABLE} to infer one "
            f"from: use a dataset of the release ({few(with_cells, 12)}) or a profile file"
        )
    return entry


def _require(columns: list[str], wanted, entry: FileEntry, name: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise AbcError(
            f"cannot infer a profile for {name}: {entry.relative_path} has no column(s) "
            f"{few(missing)} (it has {few(columns)}); is it a 10x dataset? Write a profile "
            "(config/datasets/README.md) naming its columns"
        )


def _words(directory: str) -> set[str]:
    return {w.lower() for w in re.split(r"[-_]", directory) if w and not GENERIC.match(w)}


def _taxonomy_directory(name: str, release: ReleaseReader, why: list[str]) -> str | None:
    """The taxonomy directory whose name shares the most words with the dataset's (Jaccard
    similarity: WMB-10X -> WMB-taxonomy, not Consensus-WMB-integrated-taxonomy)."""
    mine = _words(name)
    scores = {}
    for directory, tables in release.tables.items():
        if any(t in tables for t in TAXONOMY_TABLES):
            theirs = _words(directory)
            if mine & theirs:
                scores[directory] = len(mine & theirs) / len(mine | theirs)
    if not scores:
        why.append("taxonomy: none (no taxonomy directory shares a word with the name)")
        return None
    best = max(scores.values())
    tied = sorted(d for d, s in scores.items() if s == best)
    if len(tied) > 1:
        raise AbcError(
            f"cannot infer the taxonomy of {name}: {few(tied)} match its name equally; write "
            "a profile (config/datasets/README.md) with taxonomy.directory"
        )
    why.append(f"taxonomy: {tied[0]} (its name shares the most words with {name})")
    return tied[0]


def _membership(taxonomy_dir, cell_columns, cells_entry, name, release, why) -> dict | None:
    """The per-cell table holding the group key, or None where the cell table has it."""
    entry = release.table(taxonomy_dir, MEMBERSHIP) if taxonomy_dir else None
    if entry is not None:
        _require(release.header(entry), (LABEL, GROUP), entry, name)
        why.append(f"group: {GROUP} of {entry.relative_path} (cells without a row: "
                   "sampling.unassigned)")  # fmt: skip
        return {"directory": taxonomy_dir, "name": MEMBERSHIP, "label": LABEL}
    if GROUP in cell_columns:
        why.append(f"group: {GROUP} of the cell table")
        return None
    raise AbcError(
        f"cannot infer the group key of {name}: {cells_entry.relative_path} has no {GROUP} "
        f"column and {taxonomy_dir or 'no taxonomy directory'} has no {MEMBERSHIP}; write a "
        "profile (config/datasets/README.md) with cells.group"
    )


def _embedding(taxonomy_dir, cell_columns, release, why) -> dict:
    """The atlas's 2-d embedding: x, y of the cell table, else of the taxonomy's table."""
    if all(c in cell_columns for c in UMAP):
        why.append("umap: x, y of the cell table")
        return {"umap": list(UMAP), "embedding": None}
    entry = release.table(taxonomy_dir, EMBEDDING) if taxonomy_dir else None
    if entry is not None and all(c in release.header(entry) for c in (LABEL, *UMAP)):
        why.append(f"umap: x, y of {entry.relative_path}")
        table = {"directory": taxonomy_dir, "name": EMBEDDING, "label": LABEL}
        return {"umap": list(UMAP), "embedding": table}
    why.append("umap: none (no x, y for the cells)")
    return {"umap": None, "embedding": None}


def _taxonomy(taxonomy_dir, name, release, why) -> dict:
    if taxonomy_dir is None:
        return {"format": "none", "levels": [], "annotations": []}
    term_set = release.table(taxonomy_dir, TERM_SET)
    if term_set is None or release.table(taxonomy_dir, LONG_MEMBERSHIP) is None:
        raise AbcError(
            f"cannot infer the levels of {name}'s taxonomy {taxonomy_dir}: it has no "
            f"{TERM_SET} and {LONG_MEMBERSHIP}; write a profile (config/datasets/README.md)"
        )
    levels, annotations = _levels(release.rows(term_set), term_set, name)
    why.append(f"levels: {', '.join(levels)} (top first, from {TERM_SET})"
               + (f"; aside: {', '.join(annotations)}" if annotations else ""))  # fmt: skip
    spec = {"format": "long", "directory": taxonomy_dir, "levels": levels,
            "annotations": annotations}  # fmt: skip
    long_header = release.header(release.table(taxonomy_dir, LONG_MEMBERSHIP))
    if "color_hex_triplet" not in long_header and release.table(taxonomy_dir, TERMS):
        spec["terms"] = TERMS
        why.append(f"colours: {TERMS}.color_hex_triplet")
    views = [n for n, e in sorted(release.tables[taxonomy_dir].items())
             if n.startswith("cluster_to_") and n != LONG_MEMBERSHIP
             and GROUP in release.header(e)]  # fmt: skip
    if views:
        spec["views"] = views
        why.append(f"per-cluster annotations: {', '.join(views)}")
    return spec


def _levels(rows: list[dict], entry: FileEntry, name: str) -> tuple[list[str], list[str]]:
    """The hierarchy top first, and the term sets outside it. The parent links say the
    hierarchy where the table has them; else the ``order``, the neurotransmitter aside."""
    if not rows or not {"name", "label", "order"} <= set(rows[0]):
        raise AbcError(f"cannot infer the levels of {name}: {entry.relative_path} has no "
                       "name, label and order columns; write a profile")  # fmt: skip
    chain = _parent_chain(rows)
    if chain is None:
        ordered = sorted(rows, key=lambda r: float(r["order"] or 0))
        chain = [r for r in ordered if not ANNOTATION.search(r["name"])]
    levels = [r["name"] for r in chain]
    annotations = [r["name"] for r in rows if r["name"] not in levels]
    return levels, annotations


def _parent_chain(rows: list[dict]) -> list[dict] | None:
    """The levels from the root down by ``parent_term_set_label``; None if the table has
    no parent links or they do not form one chain."""
    if not any(r.get("parent_term_set_label") for r in rows):
        return None
    children: dict[str, list[dict]] = {}
    for row in rows:
        children.setdefault(row.get("parent_term_set_label") or "", []).append(row)
    parents = {r["label"] for r in rows if r["label"] in children}
    roots = [r for r in children.get("", []) if r["label"] in parents]
    if len(roots) != 1:
        return None
    chain = roots
    while len(children.get(chain[-1]["label"], [])) == 1:
        chain.append(children[chain[-1]["label"]][0])
    return None if chain[-1]["label"] in children else chain


def _genes(name: str, release: ReleaseReader, why: list[str]) -> dict | None:
    entry = release.table(name, GENES)
    if entry is None or "gene_identifier" not in release.header(entry):
        why.append("genes: the matrices' own (no gene table of the dataset's)")
        return None
    why.append(f"genes: {entry.relative_path}")
    return {"directory": name, "name": GENES, "id": "gene_identifier"}
