"""Synthetic releases of the other 10x datasets, each in its real shape (see
``config/datasets`` and the project's notes on the bucket): cell-label formats, cell-table
columns, group keys (a column, or a membership table), taxonomy tables (long, pivoted or
none), gene tables (own, per species, or WMB-10X's) and compressed matrices (gzip+shuffle,
lzf). ``write_dataset`` writes one under the bucket root and returns the keys it wrote.
Traps, as in the WMB release: matrices hold extra cells and shuffled rows; group keys start
at 0 (WHB); some clusters lack a neurotransmitter term (WHB); some cells have no membership
row (HMBA); the Aging table's ``wmb_cluster_alias`` is partly empty.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.demo.common import (
    cluster_sizes,
    csv_bytes,
    gene_var,
    long_taxonomy_tables,
    random_barcodes,
    random_colors,
    random_counts,
    write_bytes,
    write_raw_and_log2,
)
from abc_downsample.demo.genes import marmoset_genes


@dataclass(frozen=True)
class Shape:
    metadata: str  # the cell table's directory key, metadata/<dataset>/<version>
    matrices: tuple[tuple[str, float], ...]  # (feature_matrix_label, share of the cells)
    matrix_dir: str  # expression_matrices/<dataset>/<version>
    storage: str  # synthetic.STORAGE_FILTERS key
    labels: str  # "whb" (10X386_2:BARCODE) or "wmb" (BARCODE-135_B01)
    taxonomy: str  # long, pivoted or none
    taxonomy_dir: str | None
    levels: tuple[str, ...]  # top first
    annotations: tuple[str, ...] = ()
    genes: tuple[tuple[str, str], ...] = (("gene", "ENSG"),)  # (table, id prefix) per species
    membership: bool = False
    alias_start: int = 1


SHAPES = {
    "WHB-10Xv3": Shape(
        "metadata/WHB-10Xv3/20241115",
        (("WHB-10Xv3-Neurons", 0.8), ("WHB-10Xv3-Nonneurons", 0.2)),
        "expression_matrices/WHB-10Xv3/20240330", "gzip-shuffle", "whb",
        "long", "metadata/WHB-taxonomy/20240330", ("supercluster", "cluster", "subcluster"),
        ("neurotransmitter",), alias_start=0,
    ),
    "Zeng-Aging-Mouse-10Xv3": Shape(
        "metadata/Zeng-Aging-Mouse-10Xv3/20250131", (("Zeng-Aging-Mouse-10Xv3", 1.0),),
        "expression_matrices/Zeng-Aging-Mouse-10Xv3/20241130", "lzf", "wmb",
        "pivoted", "metadata/Zeng-Aging-Mouse-WMB-taxonomy/20241130",
        ("class_name", "subclass_name", "supertype_name", "cluster_name"), genes=(),
    ),
    "HMBA-10xMultiome-BG": Shape(
        "metadata/HMBA-10xMultiome-BG/20250531",
        (("HMBA-10xMultiome-BG-Human", 0.5), ("HMBA-10xMultiome-BG-Macaque", 0.3),
         ("HMBA-10xMultiome-BG-Marmoset", 0.2)),
        "expression_matrices/HMBA-10xMultiome-BG/20250531", "gzip-shuffle", "wmb",
        "long", "metadata/HMBA-BG-taxonomy-CCN20250428/20250531",
        ("neighborhood", "class", "subclass", "group", "cluster"),
        genes=(("human_gene", "ENSG"), ("macaque_gene", "ENSMMUG"), ("marmoset_gene", "ENSCJAG")),
        membership=True,
    ),
    "ASAP-PMDBS-10X": Shape(
        "metadata/ASAP-PMDBS-10X/20250331", (("ASAP-PMDBS-10X", 1.0),),
        "expression_matrices/ASAP-PMDBS-10X/20250331", "chunked", "whb",
        "none", None, ("cluster_label",),
    ),
}  # fmt: skip
N_CELLS = 3000  # unless the caller says (the demos: their config's synthetic block)
N_GENES = 80


def write_dataset(root: Path, name: str, rng: np.random.Generator, wmb_genes,
                  n_cells: int = N_CELLS, n_genes: int = N_GENES) -> list[str]:  # fmt: skip
    """Write the synthetic ``name`` dataset under ``root``, ``n_cells`` cells of
    ``n_genes`` genes (its own gene tables; WMB-10X's where it has none); return its keys."""
    shape = SHAPES[name]
    clusters = _clusters(rng, shape, n_cells)
    cells = _cells(rng, shape, clusters, name)
    files = {}
    columns = [c for c in cells.columns if not c.startswith("_")]
    if shape.membership:  # the group key lives in a table of its own; a few cells lack a row
        files[f"{shape.taxonomy_dir}/cell_to_cluster_membership.csv"] = csv_bytes(
            cells.loc[cells.index % 97 != 5, ["cell_label", "cluster_alias"]]
        )
        columns.remove("cluster_alias")
    files[f"{shape.metadata}/cell_metadata.csv"] = csv_bytes(cells[columns])
    files.update(_taxonomy_files(rng, shape, clusters))
    gene_tables = {}
    for table, prefix in shape.genes:
        gene_tables[table] = _genes(rng, prefix, n_genes)
        if table == "marmoset_gene":
            # In its real shape (NCBI ids): the table HMBA-10xMultiome-Subcortex reads too.
            # The draws of the one it replaces are still made, so the other files stay.
            gene_tables[table] = marmoset_genes(N_GENES)
        files[f"{shape.metadata}/{table}.csv"] = csv_bytes(gene_tables[table])
    for path, data in files.items():
        write_bytes(root / path, data)
    for index, (label, _) in enumerate(shape.matrices):
        tables = list(gene_tables.values()) or [wmb_genes]
        genes = tables[min(index, len(tables) - 1)]  # one per species, or one for all
        for variant in ("raw", "log2"):
            files[f"{shape.matrix_dir}/{label}-{variant}.h5ad"] = None
        _write_matrices(root, rng, shape, label, cells[cells["_matrix"] == label], genes)
    return list(files)


def _clusters(rng, shape: Shape, n_cells: int) -> pd.DataFrame:
    """One row per cluster: its key, size and a term per level (nested) and annotation."""
    sizes = cluster_sizes(rng, n_cells)
    n = len(sizes)
    table = pd.DataFrame({"number_of_cells": rng.permutation(sizes)})
    table.insert(0, "cluster_alias", rng.permutation(n) + shape.alias_start)
    depth = len(shape.levels)
    for i, level in enumerate(shape.levels):  # level i has about n / 3^(depth-1-i) terms
        width = 3 ** (depth - 1 - i)
        table[level] = [f"{level.split('_')[0].capitalize()} {k // width + 1:03d}"
                        for k in range(n)]  # fmt: skip
    for name in shape.annotations:  # a few clusters have no term (WHB's neurotransmitter)
        terms = rng.choice(["VGLUT1", "GABA", "NA"], size=n).astype(object)
        terms[rng.random(n) < 0.1] = ""
        table[name] = terms
    for name in (*shape.annotations, *shape.levels):
        hexes = random_colors(rng, sorted(set(table[name]) - {""}))
        table[f"{name}_color"] = table[name].map(hexes).fillna("")
    return table


def _taxonomy_files(rng, shape: Shape, clusters: pd.DataFrame) -> dict:
    if shape.taxonomy == "long":
        sets = (*shape.levels, *shape.annotations)
        colors = clusters.set_index("cluster_alias")
        tables = long_taxonomy_tables(clusters, colors, sets, "CCN2024")
        return {f"{shape.taxonomy_dir}/{k}": csv_bytes(v) for k, v in tables.items()}
    if shape.taxonomy == "pivoted":  # the Aging mouse's cluster_mapping_pivot
        leaf = shape.levels[-1]
        pivot = pd.DataFrame(
            {
                "cluster_alias": clusters["cluster_alias"],
                "cluster_label": [f"CS20241130_{a:04d}" for a in clusters["cluster_alias"]],
                "cluster_order": np.argsort(clusters["cluster_alias"].to_numpy()) + 1,
                "cluster_name": clusters[leaf],
                "cluster_color": clusters[f"{leaf}_color"],
                **{level: clusters[level] for level in shape.levels[:-1]},
            }
        ).sort_values("cluster_alias")
        return {f"{shape.taxonomy_dir}/cluster_mapping_pivot.csv": csv_bytes(pivot)}
    return {}


def _labels(rng, shape: Shape, n: int, barcodes) -> list[str]:
    if shape.labels == "whb":  # 10X386_2:CATGGATTCTCGACGG
        libs = rng.integers(100, 400, size=n)
        lanes = rng.integers(1, 9, size=n)
        return [f"10X{a}_{b}:{c}" for a, b, c in zip(libs, lanes, barcodes, strict=True)]
    plates = rng.integers(100, 2999, size=n)
    wells = rng.integers(0, 8, size=n)
    return [f"{c}-{p}_{chr(65 + w)}0{w + 1}" for c, p, w in zip(barcodes, plates, wells,
                                                                strict=True)]  # fmt: skip


def _cells(rng, shape: Shape, clusters: pd.DataFrame, name: str) -> pd.DataFrame:
    n = int(clusters["number_of_cells"].sum())
    group = clusters[shape.levels[0] if shape.taxonomy == "none" else "cluster_alias"]
    keys = np.repeat(group.to_numpy(), clusters["number_of_cells"].to_numpy())
    labels = pd.Series([], dtype=object)
    while len(labels) < n or labels.duplicated().any():
        barcodes = random_barcodes(rng, n)
        labels = pd.Series(_labels(rng, shape, n, barcodes))
    shares = np.array([share for _, share in shape.matrices])
    matrix = np.array([m for m, _ in shape.matrices])[rng.choice(len(shares), n, p=shares)]
    cells = pd.DataFrame({"cell_label": labels, "cell_barcode": barcodes})
    if name == "WHB-10Xv3":
        cells = cells.assign(
            barcoded_cell_sample_label=[lab.split(":")[0] for lab in labels],
            library_label=[f"LIB{lab.split('_')[0][3:]}" for lab in labels],
            feature_matrix_label=matrix, entity="nuclei", brain_section_label="",
            library_method="10Xv3", donor_label=rng.choice(["H18.30.002", "H19.30.001"], n),
            donor_sex=rng.choice(["F", "M"], n), dataset_label=name,
        )
    elif name == "Zeng-Aging-Mouse-10Xv3":
        cells = cells.assign(
            gene_count=rng.integers(500, 9000, n), umi_count=rng.integers(1000, 40000, n),
            doublet_score=np.round(rng.random(n) * 0.3, 4),
        )
    else:
        cells = cells.assign(feature_matrix_label=matrix, dataset_label=name,
                             donor_label=rng.choice(["D1", "D2", "D3"], n))  # fmt: skip
    cells = cells.assign(
        x=np.round(rng.normal(0, 10, n), 6), y=np.round(rng.normal(0, 10, n), 6)
    ) if shape.taxonomy != "none" and not shape.membership else cells  # fmt: skip
    key = "cluster_label" if shape.taxonomy == "none" else "cluster_alias"
    cells[key] = keys
    if name == "WHB-10Xv3":
        cells = cells.assign(region_of_interest_label=rng.choice(["MoAN", "Pu", "CaB"], n),
                             anatomical_division_label=rng.choice(["Midbrain", "Cerebrum"], n),
                             abc_sample_id=[f"s{i:06d}" for i in range(n)])  # fmt: skip
    if name == "Zeng-Aging-Mouse-10Xv3":
        wmb_alias = pd.array(rng.integers(1, 5300, n), dtype="Int64")
        wmb_alias[rng.random(n) < 0.2] = pd.NA
        cells = cells.assign(feature_matrix_label=matrix, dataset_label=name,
                             wmb_cluster_alias=wmb_alias)  # fmt: skip
    cells["_matrix"] = matrix
    return cells.iloc[rng.permutation(n)].reset_index(drop=True)


def _genes(rng, prefix: str, n_genes: int) -> pd.DataFrame:
    ids = np.sort(rng.choice(900_000, size=n_genes, replace=False)) + 1000
    symbols = [f"G{i}" if i % 5 else f"MT-{i}" for i in range(1, n_genes + 1)]
    return pd.DataFrame(
        {
            "gene_identifier": [f"{prefix}{i:011d}" for i in ids],
            "gene_symbol": symbols,
            "biotype": rng.choice(["protein_coding", "lncRNA"], n_genes),
            "name": [f"synthetic gene {s}" for s in symbols],
        }
    )


def _write_matrices(root: Path, rng, shape: Shape, label: str, mine: pd.DataFrame, genes):
    """``<label>-raw.h5ad`` and ``-log2.h5ad``: the cells plus extras, rows shuffled."""
    extra = max(3, len(mine) // 30)
    barcodes = random_barcodes(rng, extra)
    extra_labels = [f"{lab}-extra" for lab in _labels(rng, shape, extra, barcodes)]
    labels = np.concatenate([mine["cell_label"].to_numpy(object), extra_labels])
    labels = labels[rng.permutation(len(labels))]
    obs = pd.DataFrame({"cell_barcode": [lab[-16:] for lab in labels]},
                       index=pd.Index(labels, name="cell_label"))  # fmt: skip
    var = gene_var(genes)
    counts = random_counts(rng, len(obs), len(var))
    write_raw_and_log2(root, lambda variant: f"{shape.matrix_dir}/{label}-{variant}.h5ad",
                       obs, var, counts, shape.storage)  # fmt: skip
