"""A small synthetic ABC Atlas release in the real bucket format, for the demo and the tests.

``write_release(root)`` writes, under ``root``, the keys of the public bucket (relative paths):
two release manifests, the WMB-10X cell and gene tables, the WMB-taxonomy views and five
expression matrices (raw and log2) in the real h5ad layout. Everything is derived from one
seeded generator and written without timestamps, so the same arguments give byte-identical
files and stable manifest MD5s.

Traps the real data sets, reproduced on purpose:
- every h5ad holds extra cells that are not in ``cell_metadata.csv`` and its rows are
  shuffled relative to the metadata: consumers must match by cell label;
- barcodes repeat across samples (cell labels stay unique); some rows have no non-zeros;
- X storage differs between files: WMB-10Xv2 and WMB-10XMulti store X/data, X/indices and
  X/indptr as CONTIGUOUS datasets (like the real, uncompressed files); WMB-10Xv3 stores them
  CHUNKED + gzip with small chunks (see ``MATRICES``);
- heavy-tailed cluster sizes with clusters of exactly 1, 49, 50 and 51 cells (when
  ``n_cells`` allows), several clusters spread over more than one matrix file;
- one neurotransmitter term is literally ``NA``;
- a non-WMB directory (Zhuang-ABCA-1) also lists a ``gene`` and ``cell_metadata`` file.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from abc_downsample.atomic import write_if_changed
from abc_downsample.demo.common import (
    SPECIAL_CLUSTER_SIZES,
    csv_bytes,
    file_facts,
    manifest_json,
    write_bytes,
)
from abc_downsample.demo.datasets import write_dataset
from abc_downsample.demo.wmb import (
    CELL_METADATA_DIR,
    MATRICES,
    OTHER_DIR,
    TAXONOMY_DIR,
    cells_table,
    cluster_taxonomy,
    genes_table,
    regions_table,
    taxonomy_tables,
    write_matrix_pair,
)
from abc_downsample.errors import AbcError
from abc_downsample.metadata.tables import CELL_METADATA_COLUMNS
from abc_downsample.release.manifest import manifest_key


def write_release(
    root,
    *,
    release: str = "20250531",
    n_cells: int = 6000,
    n_genes: int = 120,
    seed: int = 0,
    old_release: str = "20240330",
    datasets: tuple[str, ...] = (),
    dataset_size: tuple[int, int] | None = None,
) -> dict:
    """Write a synthetic release under ``root``; return what tests need to know about it.

    ``n_cells`` is the number of cells in ``cell_metadata.csv`` (the h5ad files hold a few
    more). The returned dict has ``root``, ``release``, ``old_release``, ``manifest`` (its
    relative path), ``files`` ({relative_path: {size, md5}}), ``matrices``
    ({label: {dataset, storage, raw, log2, n_rows, n_extra}}), ``n_cells``, ``n_genes``,
    ``cluster_sizes`` ({cluster_alias: cells}) and ``special_clusters`` ({size: alias}).
    ``datasets`` names other datasets to add in their real shape (``demo.datasets``), of
    ``dataset_size`` (cells, genes) each (default: that module's); the WMB files are the
    same with or without them.
    """
    if n_cells < 100 or n_genes < 10:
        raise AbcError(
            f"synthetic release needs n_cells >= 100 and n_genes >= 10, got {n_cells} and "
            f"{n_genes}: raise synthetic.n_cells / synthetic.n_genes"
        )
    for name, value in (("release", release), ("old_release", old_release)):
        if not (len(value) == 8 and value.isdigit()):
            raise AbcError(f"synthetic {name} {value!r} is not a YYYYMMDD date: set abc.release")
    if old_release >= release:
        raise AbcError(f"old_release {old_release!r} must sort before release {release!r}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    taxonomy = cluster_taxonomy(rng, n_cells)
    genes = genes_table(rng, n_genes)
    cells = cells_table(rng, taxonomy)
    files: dict[str, bytes | None] = {}  # relative path -> bytes, or None if already written

    files[f"{CELL_METADATA_DIR}/cell_metadata.csv"] = csv_bytes(cells[list(CELL_METADATA_COLUMNS)])
    files[f"{CELL_METADATA_DIR}/gene.csv"] = csv_bytes(genes)
    files[f"{CELL_METADATA_DIR}/region_of_interest_metadata.csv"] = csv_bytes(regions_table())
    for name, table in taxonomy_tables(rng, taxonomy).items():
        files[f"{TAXONOMY_DIR}/{name}"] = csv_bytes(table)
    files[f"{OTHER_DIR}/gene.csv"] = csv_bytes(genes.iloc[: n_genes // 2])
    files[f"{OTHER_DIR}/cell_metadata.csv"] = csv_bytes(
        pd.DataFrame({"cell_label": ["182010_1001"], "brain_section_label": ["Zhuang-ABCA-1.001"]})
    )
    for path, data in files.items():
        write_bytes(root / path, data)

    for index, name in enumerate(datasets):
        written = write_dataset(root, name, np.random.default_rng([seed, index + 1]), genes,
                                *(dataset_size or ()))  # fmt: skip
        files.update(dict.fromkeys(written))
    matrices = {}
    for spec in MATRICES:
        matrices[spec.label] = write_matrix_pair(root, rng, spec, cells, genes)
        files[spec.relative_path("raw")] = None
        files[spec.relative_path("log2")] = None

    listing = {path: file_facts(root / path) for path in sorted(files)}
    for version in (old_release, release):
        write_bytes(root / manifest_key(version), manifest_json(version, listing))
    sizes = taxonomy.set_index("cluster_alias")["n_cells"]
    return {
        "root": str(root),
        "release": release,
        "old_release": old_release,
        "manifest": manifest_key(release),
        "files": listing,
        "matrices": matrices,
        "n_cells": n_cells,
        "n_genes": n_genes,
        "cluster_sizes": {int(k): int(v) for k, v in sizes.items()},
        "special_clusters": {
            int(s): int(sizes.index[sizes == s][0])
            for s in SPECIAL_CLUSTER_SIZES
            if (sizes == s).any()
        },
    }


def ensure_release(root, settings: dict) -> bool:
    """Write the release of ``settings`` (the config's ``synthetic`` block plus ``release``)
    under ``root`` unless it is there already; True if it was written. Quiet: anndata's
    notes on categorical columns are noise to a demo user."""
    root = Path(root)
    record = root / ".synthetic.json"
    dataset = settings.get("dataset", "WMB-10X")
    keys = ("release", "n_cells", "n_genes", "seed")
    wanted = json.dumps({**{k: settings[k] for k in keys}, "dataset": dataset})
    if (root / manifest_key(settings["release"])).exists() and _read(record) == wanted:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_release(
            root,
            release=str(settings["release"]),
            n_cells=int(settings["n_cells"]),
            n_genes=int(settings["n_genes"]),
            seed=int(settings["seed"]),
            datasets=() if dataset == "WMB-10X" else (dataset,),
            # the demo's dataset has the size its config says, whichever it is
            dataset_size=(int(settings["n_cells"]), int(settings["n_genes"])),
        )
    write_if_changed(record, wanted)
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


# ---- taxonomy and cluster sizes -------------------------------------------------------


# ---- genes and cells ------------------------------------------------------------------


# ---- expression matrices --------------------------------------------------------------


# ---- files and manifest ---------------------------------------------------------------


