"""What every synthetic dataset is written with: cluster sizes, barcodes, counts, h5ad
files in the real layouts, CSV bytes, the manifest."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from abc_downsample.atomic import atomic_path
from abc_downsample.errors import AbcError
from abc_downsample.h5ad.encoding import encode

BUCKET_URL = "https://allen-brain-cell-atlas.s3.us-west-2.amazonaws.com/"


SPECIAL_CLUSTER_SIZES = (1, 49, 50, 51)


CHUNK_ELEMENTS = 512  # small chunks so a read of a few rows still spans chunk boundaries


# X storage: the real files' likely shapes (h5py filters of chunked datasets)
STORAGE_FILTERS = {
    "chunked": {"compression": "gzip"},
    "gzip-shuffle": {"compression": "gzip", "shuffle": True},
    "lzf": {"compression": "lzf"},
    # the upstream h5ad builder of 2026 (abc_validator.anndata_utils): gzip level 4
    "gzip4": {"compression": "gzip", "compression_opts": 4},
}


def cluster_sizes(rng: np.random.Generator, n_cells: int) -> np.ndarray:
    """Heavy-tailed sizes summing to ``n_cells``: many small clusters, a few big ones."""
    specials = []
    for size in SPECIAL_CLUSTER_SIZES:  # keep them only if the rest still has room
        if sum(specials) + size <= n_cells // 2:
            specials.append(size)
    rest = n_cells - sum(specials)
    n_other = max(4, rest // 55)
    weights = rng.lognormal(mean=3.0, sigma=1.4, size=n_other)
    sizes = np.maximum(2, np.floor(weights * rest / weights.sum())).astype(np.int64)
    sizes[np.argmax(sizes)] += rest - sizes.sum()  # the biggest absorbs the rounding
    if sizes.min() < 1:
        raise AbcError(f"cannot spread {n_cells} cells over clusters: raise n_cells")
    return np.concatenate([specials, sizes]).astype(np.int64)


def long_taxonomy_tables(clusters: pd.DataFrame, colors: pd.DataFrame, sets, prefix: str):
    """The long tables of a taxonomy: ``cluster_annotation_term_set`` (``sets`` in order),
    ``cluster_annotation_term`` and ``cluster_to_cluster_annotation_membership``, from one
    row per cluster (cluster_alias, number_of_cells, a column per set; an empty term: no
    row) and the clusters' colours (``<set>_color`` columns, indexed by cluster_alias)."""
    term_sets = pd.DataFrame(
        {
            "label": [f"{prefix}_{s.upper()}" for s in sets],
            "name": list(sets),
            "description": [f"{s} level of the taxonomy" for s in sets],
            "order": range(len(sets)),
        }
    )
    rows, terms = [], {}
    for set_label, name in zip(term_sets["label"], sets, strict=True):
        for alias, term, n in zip(clusters["cluster_alias"], clusters[name],
                                  clusters["number_of_cells"], strict=True):  # fmt: skip
            if term == "" or pd.isna(term):
                continue
            label = terms.setdefault((name, term), f"{set_label}_{len(terms) + 1:04d}")
            color = colors.loc[alias, f"{name}_color"]
            rows.append((label, set_label, alias, term, name, n, color))
    membership = pd.DataFrame(rows, columns=[
        "cluster_annotation_term_label", "cluster_annotation_term_set_label", "cluster_alias",
        "cluster_annotation_term_name", "cluster_annotation_term_set_name", "number_of_cells",
        "color_hex_triplet"])  # fmt: skip
    term_table = pd.DataFrame(
        [(label, term, f"{prefix}_{name.upper()}") for (name, term), label in terms.items()],
        columns=["label", "name", "cluster_annotation_term_set_label"],
    )
    return {
        "cluster_annotation_term_set.csv": term_sets,
        "cluster_annotation_term.csv": term_table,
        "cluster_to_cluster_annotation_membership.csv": membership,
    }


def random_colors(rng: np.random.Generator, terms) -> dict[str, str]:
    """A ``#RRGGBB`` colour per term, in the order given."""
    return {t: "#" + "".join(f"{v:02X}" for v in rng.integers(0, 256, 3)) for t in terms}


def wells(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` plate wells, ``A01`` to ``H12``."""
    rows_cols = rng.integers(0, [8, 12], size=(n, 2))
    return [f"{chr(65 + int(r))}{int(c) + 1:02d}" for r, c in rows_cols]


def random_barcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    letters = np.array(list("ACGT"))
    codes = letters[rng.integers(0, 4, size=(n, 16))]
    return codes.view("<U16").ravel()


def random_counts(rng: np.random.Generator, n_rows: int, n_genes: int):
    """Integer counts as float32 CSR arrays (data, indices, indptr); some rows empty."""
    density = rng.uniform(0.05, 0.4, size=n_rows)
    nnz = rng.binomial(n_genes, density)
    nnz[rng.random(n_rows) < 0.01] = 0
    nnz[n_rows // 2] = 0  # at least one empty row in every file
    indptr = np.concatenate([[0], np.cumsum(nnz)]).astype(np.int64)
    indices = np.empty(indptr[-1], dtype=np.int32)
    for row, k in enumerate(nnz):
        indices[indptr[row] : indptr[row + 1]] = np.sort(rng.choice(n_genes, k, replace=False))
    data = (rng.geometric(0.3, size=indptr[-1])).astype(np.float32)
    return data, indices, indptr


def log2_cpm(counts):
    data, indices, indptr = counts
    row_of_value = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    row_sums = np.bincount(row_of_value, weights=data, minlength=indptr.size - 1)
    cpm = data.astype(np.float64) / row_sums[row_of_value] * 1e6
    return np.log2(cpm + 1).astype(np.float32), indices, indptr


def gene_var(genes: pd.DataFrame) -> pd.DataFrame:
    """An h5ad's var from a gene table: ``gene_symbol`` indexed by ``gene_identifier``."""
    return pd.DataFrame(
        {"gene_symbol": genes["gene_symbol"].to_numpy()},
        index=pd.Index(genes["gene_identifier"].to_numpy(), name="gene_identifier"),
    )


def write_raw_and_log2(
    root: Path,
    key_of: Callable[[str], str],
    obs,
    var,
    counts,
    storage: str,
    extra_uns: Callable[[str], dict] = lambda variant: {},
) -> None:
    """The ``raw`` h5ad of ``counts`` and its ``log2`` (log2(CPM+1)) one, at
    ``root / key_of(variant)``; uns: ``normalization``, then ``extra_uns(variant)``."""
    for variant, matrix in (("raw", counts), ("log2", log2_cpm(counts))):
        uns = {"normalization": "raw" if variant == "raw" else "log2(CPM+1)", **extra_uns(variant)}
        write_h5ad(root / key_of(variant), obs, var, uns, matrix, storage)


def write_h5ad(path: Path, obs, var, uns: dict, csr, storage: str) -> None:
    """anndata writes obs/var/uns; X is added with h5py to control its storage layout."""
    data, indices, indptr = csr
    with atomic_path(path, suffix=".h5ad") as tmp:
        ad.AnnData(obs=obs, var=var, uns=uns).write_h5ad(tmp)
        with h5py.File(tmp, "a") as f:
            x = f.create_group("X")
            encode(x, "csr_matrix")
            x.attrs["shape"] = np.array([len(obs), len(var)], dtype=np.int64)
            for name, values in (("data", data), ("indices", indices), ("indptr", indptr)):
                if storage in STORAGE_FILTERS:
                    chunks = (max(1, min(CHUNK_ELEMENTS, values.size)),)
                    x.create_dataset(name, data=values, chunks=chunks, **STORAGE_FILTERS[storage])
                else:
                    x.create_dataset(name, data=values)


def csv_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode()


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def file_facts(path: Path) -> dict:
    """A file's size and MD5, as a manifest lists them."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "md5": digest.hexdigest()}


def split_key(relative_path: str) -> tuple[str, str, str, str, str]:
    """(kind, directory, version, entry name, extension or variant) of a bucket key."""
    kind, directory, version, *rest = relative_path.split("/")
    stem, ext = rest[-1].rsplit(".", 1)
    if kind == "expression_matrices":
        label, variant = stem.rsplit("-", 1)
        return kind, directory, version, label, variant
    return kind, directory, version, stem, ext


def manifest_json(version: str, listing: dict) -> bytes:
    """The real manifest's JSON for ``listing`` ({relative_path: {size, md5}})."""
    directories: dict = {}
    files: dict = {}
    for path, facts in listing.items():
        kind, directory, dir_version, name, key = split_key(path)
        dir_path = f"{kind}/{directory}/{dir_version}"
        dir_entry = directories.setdefault(directory, {"directories": {}})["directories"]
        total = dir_entry.get(kind, {}).get("total_size", 0) + facts["size"]
        dir_entry[kind] = {
            "version": dir_version,
            "relative_path": dir_path,
            "url": f"{BUCKET_URL}{dir_path}/",
            "view_link": f"{BUCKET_URL}index.html#{dir_path}/",
            "total_size": total,
        }
        entry = {
            "version": dir_version,
            "relative_path": path,
            "url": f"{BUCKET_URL}{path}",
            "size": facts["size"],
            "file_hash": facts["md5"],
        }
        names = files.setdefault(directory, {}).setdefault(kind, {})
        if kind == "expression_matrices":  # {name: {variant: {"files": {"h5ad": entry}}}}
            names.setdefault(name, {})[key] = {"files": {"h5ad": entry}}
        else:  # {name: {"files": {ext: entry}}}
            names.setdefault(name, {"files": {}})["files"][key] = entry
    manifest = {
        "version": version,
        "resource_uri": "s3://allen-brain-cell-atlas/",
        "directory_listing": directories,
        "file_listing": files,
    }
    return (json.dumps(manifest, indent=2) + "\n").encode()
