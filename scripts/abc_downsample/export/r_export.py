"""The result in files R reads with its own functions, no Python on the R side.

- a 10x-format HDF5 (``Seurat::Read10X_h5``, ``DropletUtils::read10xCounts``), as Cell
  Ranger writes it: int32 counts (raw data), int64 indices and indptr, int32 shape, the
  root attributes, gzip chunks if asked. Its CSC genes x cells layout holds exactly the
  arrays of our CSR cells x genes X, so X is copied block by block: memory follows one
  block, not the matrix;
- the cell metadata, the category order of its group columns, the atlas UMAP and the
  atlas colours as CSV (``read.csv``).
"""

from __future__ import annotations

import logging
import os

import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem

from abc_downsample.atomic import atomic_path
from abc_downsample.cells_csv import CELL_LABEL
from abc_downsample.concat.build import DEFAULT_BLOCK_NNZ
from abc_downsample.errors import AbcError, unreadable
from abc_downsample.h5ad.csr import check_csr_group
from abc_downsample.h5ad.tables import read_obs, read_obs_index, read_var
from abc_downsample.provenance import provenance_in

log = logging.getLogger(__name__)

# R's sparse matrices (dgCMatrix) index non-zeros with 32-bit integers.
DGC_MAX_NNZ = 2**31 - 1
FEATURE_TYPE = "Gene Expression"
UMAP_KEY = "X_umap"
# Chunk of the datasets when compressed (export_r.gzip_level; benchmarks/README.md).
H5_CHUNK = 1 << 18
# Cell Ranger's dtypes (its matrix.h5); log2 values stay floating point.
COUNT_DTYPE, INDEX_DTYPE = np.dtype(np.int32), np.dtype(np.int64)


def warn_if_too_big_for_r(nnz: int, limit: int = DGC_MAX_NNZ) -> bool:
    """Warn when R cannot hold the matrix as one dgCMatrix (True if it warned)."""
    if nnz <= limit:
        return False
    log.warning(  # rule_io sends our warnings to the terminal too
        f"the result has {nnz:,} non-zeros, more than R's dgCMatrix holds ({limit:,}): "
        "Seurat and the R objects will fail; read the 10x HDF5 with "
        "DropletUtils::read10xCounts(path, type='HDF5', delayed=TRUE) or sample fewer cells "
        "(sampling.target_cells)"
    )
    return True


def write_10x_h5(
    h5ad_path,
    out_path,
    block_nnz: int = DEFAULT_BLOCK_NNZ,
    nnz_limit: int = DGC_MAX_NNZ,
    gzip_level: int | None = None,
    genome: str = "unknown",
) -> int:
    """The result's X as a 10x (Cell Ranger 3+) feature-barcode HDF5; returns its nnz.

    Barcodes are the cell labels (10x barcodes repeat across libraries); features are the
    genes: id = gene_identifier, name = gene_symbol. Raw counts are written as Cell Ranger
    writes them, int32 (checked whole); log2 values keep their dtype.
    """
    with unreadable(f"result {h5ad_path}"), h5py.File(h5ad_path, "r") as src:
        x = src["X"]
        check_csr_group(x)
        n_cells, n_genes = (int(n) for n in x.attrs["shape"])
        labels = read_obs_index(src)
        var = read_var(src)
        provenance = provenance_in(src)
        nnz = len(x["data"])
        warn_if_too_big_for_r(nnz, nnz_limit)
        counts = provenance.get("variant", "raw") == "raw"
        with atomic_path(out_path, suffix=".h5") as tmp, h5py.File(tmp, "w") as out:
            _write_root_attributes(out, provenance)
            matrix = out.create_group("matrix")
            matrix.create_dataset("barcodes", data=_ascii(labels, "cell labels"))
            matrix.create_dataset("shape", data=np.array([n_genes, n_cells], np.int32))
            _write_features(matrix.create_group("features"), var, genome)
            data_dtype = COUNT_DTYPE if counts else x["data"].dtype
            _copy_blocks(x["data"], matrix, "data", block_nnz, gzip_level, data_dtype)
            _copy_blocks(x["indices"], matrix, "indices", block_nnz, gzip_level, INDEX_DTYPE)
            matrix.create_dataset("indptr", data=x["indptr"][:].astype(INDEX_DTYPE))
    return nnz


def _write_root_attributes(out: h5py.File, provenance: dict) -> None:
    """The root attributes of Cell Ranger's matrix.h5 (one library: the result)."""
    name = f"abc-downsample of {provenance.get('dataset', 'an ABC Atlas dataset')}"
    out.attrs["filetype"] = "matrix"
    out.attrs["version"] = np.int64(2)
    out.attrs["software_version"] = f"abc-downsample {provenance.get('workflow_version', '')}"
    out.attrs["chemistry_description"] = "mixed: see library_method in cells.csv"
    out.attrs["library_ids"] = _ascii([name], "library ids")
    out.attrs["original_gem_groups"] = np.array([1], np.int64)


def _write_features(group: h5py.Group, var: pd.DataFrame, genome: str) -> None:
    symbols = var["gene_symbol"] if "gene_symbol" in var.columns else var.index.to_series()
    symbols = symbols.astype(object).where(symbols.notna(), var.index.to_series())
    group.create_dataset("id", data=_ascii(var.index, "gene identifiers"))
    group.create_dataset("name", data=_ascii(symbols, "gene symbols"))
    group.create_dataset("feature_type", data=_ascii([FEATURE_TYPE] * len(var), "types"))
    group.create_dataset("genome", data=_ascii([genome] * len(var), "genomes"))
    group.create_dataset("_all_tag_keys", data=np.array([b"genome"]))


def _ascii(values, what: str) -> np.ndarray:
    """Fixed-length byte strings, as 10x writes them (at least 1 byte wide)."""
    try:
        encoded = [str(v).encode("ascii") for v in values]
    except UnicodeEncodeError as err:
        raise AbcError(f"{what} are not ASCII ({err}): the 10x format needs ASCII") from None
    width = max((len(v) for v in encoded), default=1) or 1
    return np.array(encoded, dtype=f"S{width}")


def _copy_blocks(source: h5py.Dataset, group: h5py.Group, name: str, block_nnz: int,
                 gzip_level: int | None, dtype: np.dtype) -> None:  # fmt: skip
    """``source`` into ``group[name]`` as ``dtype``, ``block_nnz`` values at a time."""
    size = len(source)
    gzip = {}
    if gzip_level is not None and size:
        gzip = {"compression": "gzip", "compression_opts": gzip_level, "shuffle": True,
                "chunks": (min(H5_CHUNK, size),)}  # fmt: skip
    dest = group.create_dataset(name, shape=(size,), dtype=dtype, **gzip)
    buffer = np.empty(min(block_nnz, size), source.dtype)
    for start in range(0, size, block_nnz):
        n = min(block_nnz, size - start)
        source.read_direct(buffer, np.s_[start : start + n], np.s_[0:n])
        dest.write_direct(_as_dtype(buffer[:n], dtype, name), np.s_[0:n], np.s_[start : start + n])


def _as_dtype(values: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """``values`` as ``dtype``; floats to an integer dtype only if they are whole and fit."""
    if values.dtype == dtype:
        return values
    if dtype.kind in "iu" and values.dtype.kind == "f" and len(values):
        info = np.iinfo(dtype)
        whole = np.array_equal(values, np.rint(values))
        if not whole or values.min() < info.min or values.max() > info.max:
            raise AbcError(
                f"X holds {name} that are not whole {dtype} counts, yet the result says "
                "it is raw data: rebuild it (delete it and rerun), or export log2 data "
                "(abc.variant: log2)"
            )
    return np.ascontiguousarray(values, dtype=dtype)


def cell_tables(h5ad_path) -> dict[str, pd.DataFrame]:
    """The cell metadata, the atlas UMAP and the colours of the result, as R-ready tables."""
    with unreadable(f"result {h5ad_path}"), h5py.File(h5ad_path, "r") as h5file:
        obs = read_obs(h5file)
        # datasets whose cell table has no embedding (the profile's umap: null) have none
        has_umap = UMAP_KEY in h5file.get("obsm", {})
        umap = read_elem(h5file["obsm"][UMAP_KEY])[:, :2] if has_umap else np.empty((len(obs), 0))
        uns = h5file.get("uns", {})
        colors = {k: read_elem(uns[k]) for k in uns if k.endswith("_colors")}
    obs.index.name = CELL_LABEL
    umap_table = pd.DataFrame(umap, index=obs.index, columns=["UMAP_1", "UMAP_2"][: umap.shape[1]])
    return {"cells": obs, "umap": umap_table, "colors": color_table(obs, colors),
            "levels": level_table(obs)}  # fmt: skip


def level_table(obs: pd.DataFrame) -> pd.DataFrame:
    """One row per (column, level) of every categorical column, in category order: R makes
    these columns factors with these levels, and keeps the others (text naming cells,
    numbers) as they are."""
    rows = [
        (column, str(level))
        for column in obs.columns
        if isinstance(obs[column].dtype, pd.CategoricalDtype)
        for level in obs[column].cat.categories
    ]
    return pd.DataFrame(rows, columns=["column", "level"])


def color_table(obs: pd.DataFrame, colors: dict) -> pd.DataFrame:
    """One row per (column, term, color), terms in the column's category order."""
    rows = []
    for key, values in colors.items():
        column = key.removesuffix("_colors")
        if column not in obs.columns or not isinstance(obs[column].dtype, pd.CategoricalDtype):
            continue
        categories = obs[column].cat.categories
        if len(values) < len(categories):
            log.warning("uns[%s] has fewer colours than categories: left out", key)
            continue
        rows += [(column, str(t), str(c)) for t, c in zip(categories, values, strict=False)]
    return pd.DataFrame(rows, columns=["column", "term", "color"])


def write_cell_tables(h5ad_path, cells_csv, umap_csv, colors_csv, levels_csv) -> None:
    """cells.csv (cell_label first; a missing value is an empty field, "NA" is a term),
    umap.csv (cell_label, UMAP_1, UMAP_2), colors.csv (column, term, color) and
    levels.csv (column, level)."""
    tables = cell_tables(h5ad_path)
    for key, path, index in (("cells", cells_csv, True), ("umap", umap_csv, True),
                             ("colors", colors_csv, False),
                             ("levels", levels_csv, False)):  # fmt: skip
        with atomic_path(path, suffix=".csv") as tmp:
            tables[key].to_csv(tmp, index=index, na_rep="")


def export_for_r(
    h5ad_path,
    *,
    h5,
    cells,
    umap,
    colors,
    levels,
    genome: str = "unknown",
    nnz_limit: int = DGC_MAX_NNZ,
    gzip_level=None,
) -> str:
    """All R-side files of the result; returns a one-line summary."""
    nnz = write_10x_h5(h5ad_path, h5, nnz_limit=nnz_limit, gzip_level=gzip_level, genome=genome)
    write_cell_tables(h5ad_path, cells, umap, colors, levels)
    return f"wrote {os.path.basename(h5)} ({nnz:,} non-zeros) and the cell tables for R"


def r_objects_mem_mb(h5_path) -> int:
    """Memory of rule r_objects: R holds the matrix (~32 bytes a non-zero at its peak).

    FileNotFoundError before export_r has run: Snakemake then asks again later."""
    if not os.path.exists(h5_path):
        raise FileNotFoundError(2, "not exported yet", str(h5_path))
    with unreadable(f"10x file {h5_path}"), h5py.File(h5_path, "r") as h5file:
        nnz = len(h5file["matrix/data"])
    return 1024 + 32 * nnz // 2**20
