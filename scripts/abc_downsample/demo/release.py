"""A small synthetic ABC Atlas release in the real bucket format, for the demo and the tests.

``write_release(root)`` writes, under ``root``, the keys of the public bucket (relative paths):
two release manifests, the WMB-10X cell and gene tables, the WMB-taxonomy views and five
expression matrices (raw and log2) in the real h5ad layout. Everything is derived from one
seeded generator and written without timestamps, so the same arguments give byte-identical
files and stable manifest MD5s.

Newer releases (``demo.newer``: 20251031 … 20261031) add the datasets they first listed and
point WMB-10X's metadata to a newer directory version; a release after 20250531 gets the
manifests of every release date between ``old_release`` and it, each listing what existed
then, so ``abc.release: latest`` can be tried across releases.

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
from abc_downsample.demo.datasets import SHAPES, write_dataset
from abc_downsample.demo.newer import FAMILY_OF, RELEASES, Context, write_newer
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

BASE_RELEASE = "20250531"  # the release of WMB-10X and the datasets of demo.datasets


# (release, directory, its new version): a newer release lists the files there instead
MOVES = ((RELEASES[0], CELL_METADATA_DIR, "metadata/WMB-10X/20251031"),)
NEWEST = max(RELEASES)  # the newest release a synthetic bucket holds (abc.release: latest)


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
    ``datasets`` names other datasets to add in their real shape (``demo.datasets``, of
    ``dataset_size`` (cells, genes) each (default: that module's); and
    ``demo.newer`` for those of later releases, which ``release`` must not precede); the
    WMB files are the same with or without them. Also returned: ``releases`` ({version:
    manifest key}, every manifest written), ``listings`` ({version: the keys it lists})
    and ``newer`` ({dataset: ``demo.newer.write_newer``'s info}).
    """
    _check_arguments(release, n_cells, n_genes, old_release, datasets)
    root = Path(root)
    rng = np.random.default_rng(seed)
    taxonomy = cluster_taxonomy(rng, n_cells)
    genes = genes_table(rng, n_genes)
    cells = cells_table(rng, taxonomy)
    files = _write_wmb_tables(root, rng, taxonomy, genes, cells)

    older = [name for name in datasets if name in SHAPES]
    for index, name in enumerate(older):
        files += write_dataset(root, name, np.random.default_rng([seed, index + 1]), genes,
                               *(dataset_size or ()))  # fmt: skip
    matrices = {}
    for spec in MATRICES:
        matrices[spec.label] = write_matrix_pair(root, rng, spec, cells, genes)
        files += [spec.relative_path("raw"), spec.relative_path("log2")]

    versions = _versions(old_release, release)
    copies = _copy_moved(root, files, versions)
    wmb_metadata = _moved_dir(CELL_METADATA_DIR, versions[-1])
    context = Context(root, seed, n_cells, n_genes, cells, genes, matrices, wmb_metadata)
    newer = write_newer(root, [name for name in datasets if name in FAMILY_OF], context)
    first = {path: info["release"] for info in newer.values() for path in info["files"]}
    facts = {path: file_facts(root / path) for path in sorted({*files, *copies, *first})}
    listings = {version: _listing(version, files, first) for version in versions}
    for version, paths in listings.items():
        listing = {path: facts[path] for path in paths}
        write_bytes(root / manifest_key(version), manifest_json(version, listing))
    sizes = taxonomy.set_index("cluster_alias")["n_cells"]
    return {
        "root": str(root),
        "release": release,
        "old_release": old_release,
        "manifest": manifest_key(release),
        "releases": {version: manifest_key(version) for version in versions},
        "listings": listings,
        "files": facts,
        "matrices": matrices,
        "newer": newer,
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


def _write_wmb_tables(root: Path, rng, taxonomy, genes, cells) -> list[str]:
    """WMB-10X's tables, WMB-taxonomy's and a distractor directory's; return their keys."""
    files = {
        f"{CELL_METADATA_DIR}/cell_metadata.csv": cells[list(CELL_METADATA_COLUMNS)],
        f"{CELL_METADATA_DIR}/gene.csv": genes,
        f"{CELL_METADATA_DIR}/region_of_interest_metadata.csv": regions_table(),
        **{f"{TAXONOMY_DIR}/{name}": table
           for name, table in taxonomy_tables(rng, taxonomy).items()},
        f"{OTHER_DIR}/gene.csv": genes.iloc[: len(genes) // 2],
        f"{OTHER_DIR}/cell_metadata.csv": pd.DataFrame(
            {"cell_label": ["182010_1001"], "brain_section_label": ["Zhuang-ABCA-1.001"]}),
    }  # fmt: skip
    for path, table in files.items():
        write_bytes(root / path, csv_bytes(table))
    return list(files)


def _check_arguments(release, n_cells, n_genes, old_release, datasets) -> None:
    """One line naming the first argument the synthetic release cannot be written with."""
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
    _check_datasets(datasets, release)


def _check_datasets(datasets, release: str) -> None:
    """One line naming a dataset the synthetic release cannot hold."""
    for name in datasets:
        if name not in SHAPES and name not in FAMILY_OF:
            known = ", ".join(["WMB-10X", *SHAPES, *FAMILY_OF])
            raise AbcError(f"no synthetic dataset {name!r}: choose one of {known}")
        first = FAMILY_OF[name].release if name in FAMILY_OF else BASE_RELEASE
        if release < first:
            raise AbcError(
                f"{name} first appears in release {first}, after {release}: "
                f"set abc.release to {first} or later"
            )


def _versions(old_release: str, release: str) -> list[str]:
    """The releases to write manifests for: both asked for, and every known release date
    between them."""
    between = [d for d in (BASE_RELEASE, *RELEASES) if old_release < d < release]
    return sorted({old_release, *between, release})


def _moved_dir(directory: str, version: str) -> str:
    """Where ``version`` lists ``directory``'s files."""
    for date, old, new in MOVES:
        if directory == old and version >= date:
            return new
    return directory


def _moved(path: str, version: str) -> str:
    directory, name = path.rsplit("/", 1)
    return f"{_moved_dir(directory, version)}/{name}"


def _copy_moved(root: Path, paths, versions) -> list[str]:
    """Copy the files of every directory a written release moves; return the new keys."""
    copies = []
    for path in paths:
        new = _moved(path, versions[-1])
        if new != path:
            write_bytes(root / new, (root / path).read_bytes())
            copies.append(new)
    return copies


def _listing(version: str, base, first: dict[str, str]) -> list[str]:
    """The keys release ``version`` lists: the base files where it puts them, and the newer
    datasets' files from their first release on. One version per directory and kind, as
    in a real manifest."""
    moved = {_moved(path, version) for path in base}
    paths = sorted(moved | {path for path, f in first.items() if f <= version})
    seen = {}
    for path in paths:
        kind, directory, dir_version = path.split("/")[:3]
        if seen.setdefault((kind, directory), dir_version) != dir_version:
            raise AbcError(f"release {version} would list {kind}/{directory} in two versions")
    return paths


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
