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

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from abc_downsample.atomic import atomic_path, write_if_changed
from abc_downsample.dataset.profile import load_dataset
from abc_downsample.errors import AbcError
from abc_downsample.metadata.tables import CELL_METADATA_COLUMNS
from abc_downsample.release.manifest import manifest_key

BUCKET_URL = "https://allen-brain-cell-atlas.s3.us-west-2.amazonaws.com/"
CELL_METADATA_DIR = "metadata/WMB-10X/20241115"
TAXONOMY_DIR = "metadata/WMB-taxonomy/20231215"
OTHER_DIR = "metadata/Zhuang-ABCA-1/20231215"
# the WMB-10X profile's term sets: annotations (neurotransmitter), then levels top first
TAXONOMY_LEVELS = load_dataset("WMB-10X").taxonomy.columns
SPECIAL_CLUSTER_SIZES = (1, 49, 50, 51)
CHUNK_ELEMENTS = 512  # small chunks so a read of a few rows still spans chunk boundaries
# X storage: the real files' likely shapes (h5py filters of chunked datasets)
STORAGE_FILTERS = {
    "chunked": {"compression": "gzip"},
    "gzip-shuffle": {"compression": "gzip", "shuffle": True},
    "lzf": {"compression": "lzf"},
}


@dataclass(frozen=True)
class MatrixSpec:
    dataset: str  # dataset_label, the manifest directory
    label: str  # feature_matrix_label, the manifest name
    version: str  # directory version
    storage: str  # "contiguous" or "chunked" (gzip)
    share: float  # fraction of the metadata cells
    regions: tuple[str, ...]  # region_of_interest_acronym values
    division: str  # anatomical_division_label in the h5ad obs

    @property
    def library_method(self) -> str:
        return {"WMB-10Xv2": "10Xv2", "WMB-10Xv3": "10Xv3"}.get(self.dataset, "10xRSeq_Mult")

    def relative_path(self, variant: str) -> str:
        return f"expression_matrices/{self.dataset}/{self.version}/{self.label}-{variant}.h5ad"


MATRICES = (
    MatrixSpec("WMB-10Xv2", "WMB-10Xv2-HPF", "20230630", "contiguous", 0.20, ("HPF", "RHP"), "HPF"),
    # A label with a hyphen in its region part, like the real Isocortex-1..4 files.
    MatrixSpec(
        "WMB-10Xv2",
        "WMB-10Xv2-Isocortex-1",
        "20230630",
        "contiguous",
        0.12,
        ("MOp", "SSp"),
        "Isocortex",
    ),
    MatrixSpec("WMB-10Xv2", "WMB-10Xv2-TH", "20230630", "contiguous", 0.17, ("TH",), "TH"),
    MatrixSpec("WMB-10Xv3", "WMB-10Xv3-HPF", "20230630", "chunked", 0.20, ("HPF", "RHP"), "HPF"),
    MatrixSpec("WMB-10Xv3", "WMB-10Xv3-MB", "20230630", "chunked", 0.27, ("MB", "MB-PONS"), "MB"),
    MatrixSpec("WMB-10XMulti", "WMB-10XMulti", "20230830", "contiguous", 0.04, ("TH", "MB"), "TH"),
)

# class -> (neurotransmitter, subclasses); real names, a much smaller tree.
TAXONOMY_TREE = (
    ("01 IT-ET Glut", "Glut", ("001 CLA-EPd-CTX Car3 Glut", "004 L6 IT CTX Glut")),
    ("06 CTX-CGE GABA", "GABA", ("046 Vip Gaba", "049 Lamp5 Gaba", "052 Pvalb Gaba")),
    ("18 TH Glut", "Glut", ("151 TH Prkcd Grin2c Glut", "154 PF Fzd5 Glut")),
    ("20 MB GABA", "GABA-Glyc", ("197 SNr Six3 Gaba",)),
    ("30 Astro-Epen", "NA", ("319 Astro-TE NN", "321 Astroependymal NN")),
    ("33 Vascular", "NA", ("330 VLMC NN", "333 Endo NN")),
)
SUPERTYPES_PER_SUBCLASS = 2


def write_release(
    root,
    *,
    release: str = "20250531",
    n_cells: int = 6000,
    n_genes: int = 120,
    seed: int = 0,
    old_release: str = "20240330",
    datasets: tuple[str, ...] = (),
) -> dict:
    """Write a synthetic release under ``root``; return what tests need to know about it.

    ``n_cells`` is the number of cells in ``cell_metadata.csv`` (the h5ad files hold a few
    more). The returned dict has ``root``, ``release``, ``old_release``, ``manifest`` (its
    relative path), ``files`` ({relative_path: {size, md5}}), ``matrices``
    ({label: {dataset, storage, raw, log2, n_rows, n_extra}}), ``n_cells``, ``n_genes``,
    ``cluster_sizes`` ({cluster_alias: cells}) and ``special_clusters`` ({size: alias}).
    ``datasets`` names other datasets to add in their real shape (``synthetic_datasets``);
    the WMB files are the same with or without them.
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
    taxonomy = _taxonomy(rng, n_cells)
    genes = _genes(rng, n_genes)
    cells = _cells(rng, taxonomy)
    files: dict[str, bytes | None] = {}  # relative path -> bytes, or None if already written

    files[f"{CELL_METADATA_DIR}/cell_metadata.csv"] = _csv(cells[list(CELL_METADATA_COLUMNS)])
    files[f"{CELL_METADATA_DIR}/gene.csv"] = _csv(genes)
    files[f"{CELL_METADATA_DIR}/region_of_interest_metadata.csv"] = _csv(_regions())
    for name, table in _taxonomy_tables(rng, taxonomy).items():
        files[f"{TAXONOMY_DIR}/{name}"] = _csv(table)
    files[f"{OTHER_DIR}/gene.csv"] = _csv(genes.iloc[: n_genes // 2])
    files[f"{OTHER_DIR}/cell_metadata.csv"] = _csv(
        pd.DataFrame({"cell_label": ["182010_1001"], "brain_section_label": ["Zhuang-ABCA-1.001"]})
    )
    for path, data in files.items():
        _write_bytes(root / path, data)

    from abc_downsample.demo.datasets import write_dataset  # it imports this module

    for index, name in enumerate(datasets):
        written = write_dataset(root, name, np.random.default_rng([seed, index + 1]), genes)
        files.update(dict.fromkeys(written))
    matrices = {}
    for spec in MATRICES:
        matrices[spec.label] = _write_matrix_pair(root, rng, spec, cells, genes)
        files[spec.relative_path("raw")] = None
        files[spec.relative_path("log2")] = None

    listing = {path: file_facts(root / path) for path in sorted(files)}
    for version in (old_release, release):
        _write_bytes(root / manifest_key(version), manifest_json(version, listing))
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
        )
    write_if_changed(record, wanted)
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


# ---- taxonomy and cluster sizes -------------------------------------------------------


def _cluster_sizes(rng: np.random.Generator, n_cells: int) -> np.ndarray:
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


def _taxonomy(rng: np.random.Generator, n_cells: int) -> pd.DataFrame:
    """One row per cluster: the nested class > subclass > supertype > cluster names."""
    sizes = _cluster_sizes(rng, n_cells)
    supertypes = []  # (neurotransmitter, class, subclass, supertype base name, number)
    for class_name, transmitter, subclasses in TAXONOMY_TREE:
        for subclass in subclasses:
            base = subclass.split(" ", 1)[1]
            for k in range(1, SUPERTYPES_PER_SUBCLASS + 1):
                supertypes.append((transmitter, class_name, subclass, f"{base}_{k}"))
    # Each supertype gets at least one cluster; the rest land at random (seeded).
    owner = np.concatenate(
        [np.arange(len(supertypes)), rng.integers(0, len(supertypes), len(sizes))]
    )[: len(sizes)]
    owner = np.sort(owner)
    rows = []
    for number, (st_index, size) in enumerate(zip(owner, rng.permutation(sizes), strict=True)):
        transmitter, class_name, subclass, st_base = supertypes[st_index]
        rows.append(
            {
                "neurotransmitter": transmitter,
                "class": class_name,
                "subclass": subclass,
                "supertype": f"{st_index + 1:04d} {st_base}",
                "cluster": f"{number + 1:04d} {st_base}",
                "n_cells": int(size),
            }
        )
    table = pd.DataFrame(rows)
    # Aliases are not the cluster numbers in the real taxonomy either.
    table.insert(0, "cluster_alias", rng.permutation(len(table)) + 1)
    return table


def _taxonomy_tables(rng: np.random.Generator, taxonomy: pd.DataFrame) -> dict[str, pd.DataFrame]:
    by_alias = taxonomy.sort_values("cluster_alias")
    pivoted = by_alias[["cluster_alias", *TAXONOMY_LEVELS]]
    colors = by_alias[["cluster_alias"]].copy()
    for level in TAXONOMY_LEVELS:
        terms = sorted(by_alias[level].unique())
        hexes = {t: "#" + "".join(f"{v:02X}" for v in rng.integers(0, 256, 3)) for t in terms}
        colors[f"{level}_color"] = by_alias[level].map(hexes)
    clusters = pd.DataFrame(
        {
            "label": [f"CS20230722_CLUS_{int(n[:4]):04d}" for n in by_alias["cluster"]],
            "cluster_alias": by_alias["cluster_alias"],
            "number_of_cells": by_alias["n_cells"],
        }
    )
    return {
        "views/cluster_to_cluster_annotation_membership_pivoted.csv": pivoted,
        "views/cluster_to_cluster_annotation_membership_color.csv": colors,
        "cluster.csv": clusters,
        **long_taxonomy_tables(
            by_alias.rename(columns={"n_cells": "number_of_cells"}),
            colors.set_index("cluster_alias"),
            list(TAXONOMY_LEVELS[1:]) + [TAXONOMY_LEVELS[0]],
            "CCN20230722",
        ),
    }


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


# ---- genes and cells ------------------------------------------------------------------


def _genes(rng: np.random.Generator, n_genes: int) -> pd.DataFrame:
    ids = np.sort(rng.choice(99_000, size=n_genes, replace=False)) + 1000
    symbols = [f"Gm{i}" if i % 3 else f"Syn{i}" for i in range(1, n_genes + 1)]
    return pd.DataFrame(
        {
            "gene_identifier": [f"ENSMUSG{i:011d}" for i in ids],
            "gene_symbol": symbols,
            "name": [f"synthetic gene {s}" for s in symbols],
            "mapped_ncbi_identifier": [f"NCBIGene:{100000 + int(i)}" for i in ids],
            "comment": ["" if i % 7 else "synthetic" for i in range(n_genes)],
        }
    )


def _regions() -> pd.DataFrame:
    acronyms = sorted({r for spec in MATRICES for r in spec.regions})
    return pd.DataFrame(
        {
            "acronym": acronyms,
            "name": [f"region {a}" for a in acronyms],
            "order": range(len(acronyms)),
            "color_hex_triplet": ["#7FC97F"] * len(acronyms),
        }
    )


def _barcodes(rng: np.random.Generator, n: int) -> np.ndarray:
    letters = np.array(list("ACGT"))
    codes = letters[rng.integers(0, 4, size=(n, 16))]
    return codes.view("<U16").ravel()


def _libraries(rng: np.random.Generator, spec: MatrixSpec, n: int) -> pd.DataFrame:
    """``n`` libraries of one matrix: sample label, library label, donor."""
    plate = rng.integers(100, 999, size=n)
    wells = [
        f"{chr(65 + int(r))}{int(c) + 1:02d}" for r, c in rng.integers(0, [8, 12], size=(n, 2))
    ]
    day = rng.integers(1, 28, size=n)
    return pd.DataFrame(
        {
            "barcoded_cell_sample_label": [f"{p}_{w}" for p, w in zip(plate, wells, strict=True)],
            "library_label": [f"L8TX_2010{d:02d}_01_{w}" for d, w in zip(day, wells, strict=True)],
            "donor_label": [f"Snap25-IRES2-Cre;Ai14-{550000 + int(p)}" for p in plate],
            "donor_sex": rng.choice(["F", "M"], size=n),
        }
    ).drop_duplicates("barcoded_cell_sample_label", ignore_index=True)


def _assign_matrices(rng: np.random.Generator, taxonomy: pd.DataFrame) -> np.ndarray:
    """Matrix index of every cell, cluster by cluster; big clusters span several files."""
    shares = np.array([spec.share for spec in MATRICES])
    out = []
    for size in taxonomy["n_cells"]:
        n_files = 1 if size == 1 else (2 if size < 100 else 3)
        chosen = rng.choice(len(MATRICES), size=n_files, replace=False, p=shares)
        p = shares[chosen] / shares[chosen].sum()
        out.append(chosen[rng.choice(n_files, size=size, p=p)])
    return np.concatenate(out)


def _cells(rng: np.random.Generator, taxonomy: pd.DataFrame) -> pd.DataFrame:
    """The cell metadata table (plus an internal ``_matrix`` column)."""
    matrix = _assign_matrices(rng, taxonomy)
    alias = np.repeat(taxonomy["cluster_alias"].to_numpy(), taxonomy["n_cells"].to_numpy())
    parts = []
    for m, spec in enumerate(MATRICES):
        where = np.flatnonzero(matrix == m)
        parts.append(_cells_of_matrix(rng, spec, where.size).assign(cluster_alias=alias[where]))
    cells = pd.concat(parts, ignore_index=True)
    cells = cells.iloc[rng.permutation(len(cells))].reset_index(drop=True)
    _make_labels_unique(rng, cells)
    return cells


def _cells_of_matrix(rng: np.random.Generator, spec: MatrixSpec, n: int) -> pd.DataFrame:
    libraries = _libraries(rng, spec, n=max(2, min(6, n // 100 + 2)))
    library = libraries.iloc[rng.integers(0, len(libraries), size=n)].reset_index(drop=True)
    cells = library.assign(
        cell_barcode=_barcodes(rng, n),
        feature_matrix_label=spec.label,
        entity="cell",
        brain_section_label="",
        library_method=spec.library_method,
        region_of_interest_acronym=rng.choice(spec.regions, size=n),
        donor_genotype="Ai14(RCL-tdT)/wt",
        dataset_label=spec.dataset,
        x=np.round(rng.normal(0, 10, size=n), 6),
        y=np.round(rng.normal(0, 10, size=n), 6),
        abc_sample_id=[_uuid(rng) for _ in range(n)],
    )
    # The same barcode in two samples: labels stay unique, barcodes do not.
    if n >= 4:
        cells.loc[n - 1, "cell_barcode"] = cells.loc[0, "cell_barcode"]
    cells["cell_label"] = cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"]
    return cells


def _make_labels_unique(rng: np.random.Generator, cells: pd.DataFrame) -> None:
    while (dup := cells["cell_label"].duplicated()).any():
        cells.loc[dup, "cell_barcode"] = _barcodes(rng, int(dup.sum()))
        cells["cell_label"] = cells["cell_barcode"] + "-" + cells["barcoded_cell_sample_label"]


def _uuid(rng: np.random.Generator) -> str:
    h = "".join(f"{int(v):02x}" for v in rng.integers(0, 256, 16))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# ---- expression matrices --------------------------------------------------------------


def _write_matrix_pair(root: Path, rng, spec: MatrixSpec, cells: pd.DataFrame, genes) -> dict:
    """Write ``<label>-raw.h5ad`` and ``<label>-log2.h5ad`` with the same shuffled rows."""
    mine = cells[cells["feature_matrix_label"] == spec.label]
    extras = _extra_cells(rng, spec, mine, set(cells["cell_label"]))
    obs = pd.concat([mine, extras], ignore_index=True)
    obs = obs.iloc[rng.permutation(len(obs))].reset_index(drop=True)
    counts = _counts(rng, len(obs), len(genes))
    obs_df = pd.DataFrame(
        {
            "cell_barcode": obs["cell_barcode"].to_numpy(),
            "library_label": obs["library_label"].to_numpy(),
            "anatomical_division_label": spec.division,
        },
        index=pd.Index(obs["cell_label"].to_numpy(), name="cell_label"),
    )
    var_df = pd.DataFrame(
        {"gene_symbol": genes["gene_symbol"].to_numpy()},
        index=pd.Index(genes["gene_identifier"].to_numpy(), name="gene_identifier"),
    )
    parent_rows = np.sort(rng.choice(len(obs) * 3, size=len(obs), replace=False))
    for variant, matrix in (("raw", counts), ("log2", _log2_cpm(counts))):
        uns = {
            "normalization": "raw" if variant == "raw" else "log2(CPM+1)",
            "parent": f"AIT21.0-{spec.dataset}-{variant}",
            "parent_layer": "X",
            "parent_rows": parent_rows,
        }
        _write_h5ad(root / spec.relative_path(variant), obs_df, var_df, uns, matrix, spec.storage)
    return {
        "dataset": spec.dataset,
        "storage": spec.storage,
        "raw": spec.relative_path("raw"),
        "log2": spec.relative_path("log2"),
        "n_rows": len(obs),
        "n_extra": len(extras),
    }


def _extra_cells(rng, spec: MatrixSpec, mine: pd.DataFrame, taken: set) -> pd.DataFrame:
    """Cells present in the matrix file but absent from cell_metadata.csv."""
    n = max(3, len(mine) // 25)
    samples = mine.drop_duplicates("barcoded_cell_sample_label")
    if samples.empty:
        samples = _libraries(rng, spec, 2)
    pick = samples.iloc[rng.integers(0, len(samples), size=n)].reset_index(drop=True)
    extras = pd.DataFrame(
        {
            "cell_barcode": _barcodes(rng, n),
            "library_label": pick["library_label"].to_numpy(),
            "barcoded_cell_sample_label": pick["barcoded_cell_sample_label"].to_numpy(),
        }
    )
    extras["cell_label"] = extras["cell_barcode"] + "-" + extras["barcoded_cell_sample_label"]
    return extras[~extras["cell_label"].isin(taken)].drop_duplicates("cell_label")


def _counts(rng: np.random.Generator, n_rows: int, n_genes: int):
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


def _log2_cpm(counts):
    data, indices, indptr = counts
    row_of_value = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    row_sums = np.bincount(row_of_value, weights=data, minlength=indptr.size - 1)
    cpm = data.astype(np.float64) / row_sums[row_of_value] * 1e6
    return np.log2(cpm + 1).astype(np.float32), indices, indptr


def _write_h5ad(path: Path, obs, var, uns: dict, csr, storage: str) -> None:
    """anndata writes obs/var/uns; X is added with h5py to control its storage layout."""
    data, indices, indptr = csr
    with atomic_path(path, suffix=".h5ad") as tmp:
        ad.AnnData(obs=obs, var=var, uns=uns).write_h5ad(tmp)
        with h5py.File(tmp, "a") as f:
            x = f.create_group("X")
            x.attrs["encoding-type"] = "csr_matrix"
            x.attrs["encoding-version"] = "0.1.0"
            x.attrs["shape"] = np.array([len(obs), len(var)], dtype=np.int64)
            for name, values in (("data", data), ("indices", indices), ("indptr", indptr)):
                if storage in STORAGE_FILTERS:
                    chunks = (max(1, min(CHUNK_ELEMENTS, values.size)),)
                    x.create_dataset(name, data=values, chunks=chunks, **STORAGE_FILTERS[storage])
                else:
                    x.create_dataset(name, data=values)


# ---- files and manifest ---------------------------------------------------------------


def _csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, lineterminator="\n").encode()


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def file_facts(path: Path) -> dict:
    """A file's size and MD5, as a manifest lists them."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "md5": digest.hexdigest()}


def _split(relative_path: str) -> tuple[str, str, str, str, str]:
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
        kind, directory, dir_version, name, key = _split(path)
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
