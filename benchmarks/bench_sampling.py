"""Benchmark of the sampling step on a cell_metadata.csv of the real shape.

Generates (once, cached under benchmarks/work/) a 4,042,976-row CSV with the 17 real columns
and 5,322 heavy-tailed clusters, then measures in fresh child processes the wall time and
peak RSS of (a) our sampling step (read, sample, write list + summaries) and (b) the plain
way (pandas.read_csv of all columns, then groupby().sample).

    python benchmarks/bench_sampling.py [--runs 3] [--rows 4042976] [--skip-plain]
        [--strategy proportional] [--min-cells-per-group 0]

Not a test: it prints figures to report. The machine may be shared, so look at the spread.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from abc_downsample.metadata.tables import CELL_METADATA_COLUMNS  # noqa: E402

WORK = ROOT / "benchmarks" / "work" / "sampling"
N_CELLS = 4_042_976
N_CLUSTERS = 5_322
CHUNK = 500_000

COLUMNS = list(CELL_METADATA_COLUMNS)
REGIONS = ["CB", "CTXsp", "HPF", "HY", "Isocortex", "MB", "MY", "OLF", "P", "PAL", "STR", "TH"]


def cluster_sizes(rng: np.random.Generator, n_cells: int) -> np.ndarray:
    """Heavy-tailed sizes (lognormal, sigma 1.6: ~18 % of clusters under 50 cells, as real)."""
    raw = rng.lognormal(mean=5.35, sigma=1.6, size=N_CLUSTERS)
    sizes = np.maximum(1, np.floor(raw / raw.sum() * n_cells)).astype(np.int64)
    sizes[np.argmax(sizes)] += n_cells - sizes.sum()
    return sizes


def bases(rng: np.random.Generator, codes: np.ndarray, width: int) -> pa.Array:
    """Unique integer codes as fixed-width ACGT strings (2 bits a base)."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * 2
    digits = (codes.astype(np.uint64)[:, None] >> shifts) & 3
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[digits.astype(np.intp)]
    return pa.array(letters.view(f"S{width}").ravel().astype(str))


def pick(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    return pa.array(np.asarray(values)[rng.integers(0, len(values), n)])


def metadata_chunk(rng: np.random.Generator, aliases: np.ndarray, barcodes: np.ndarray):
    """One chunk of rows in the real column order."""
    n = len(aliases)
    library = rng.integers(0, 4000, n)
    sample = pa.array([f"{i // 8 + 10}_{'ABCDEFGH'[i % 8]}{i % 12 + 1:02d}" for i in library])
    barcode = bases(rng, barcodes, 16)
    region = rng.integers(0, len(REGIONS), n)
    version = np.where(aliases % 7 == 0, 0, 1 + (aliases % 13 == 0))
    method = np.array(["10Xv2", "10Xv3", "10xRSeq_Mult"])[version]
    dataset = np.array(["WMB-10Xv2", "WMB-10Xv3", "WMB-10XMulti"])[version]
    matrix = np.char.add(np.char.add(dataset, "-"), np.asarray(REGIONS)[region])
    matrix = np.where(version == 2, "WMB-10XMulti", matrix)
    uuid = pc.binary_join_element_wise(
        bases(rng, rng.integers(0, 2**32, n), 16),
        bases(rng, rng.integers(0, 2**16, n), 8),
        bases(rng, rng.integers(0, 2**20, n), 10),
        "-",
    )
    return pa.table(
        {
            "cell_label": pc.binary_join_element_wise(barcode, sample, "-"),
            "cell_barcode": barcode,
            "barcoded_cell_sample_label": sample,
            "library_label": pa.array([f"L8TX_2010{i % 30:02d}_01_C{i % 12:02d}" for i in library]),
            "feature_matrix_label": pa.array(matrix),
            "entity": pa.array(np.full(n, "cell")),
            "brain_section_label": pa.nulls(n, pa.string()),
            "library_method": pa.array(method),
            "region_of_interest_acronym": pa.array(np.asarray(REGIONS)[region]),
            "donor_label": pick(rng, ["Snap25-IRES2-Cre;Ai14-550850", "C57BL6J-638850"], n),
            "donor_genotype": pick(rng, ["Ai14(RCL-tdT)/wt", "wt/wt"], n),
            "donor_sex": pick(rng, ["F", "M"], n),
            "dataset_label": pa.array(dataset),
            "x": pa.array(np.round(rng.normal(0, 10, n), 6)),
            "y": pa.array(np.round(rng.normal(0, 10, n), 6)),
            "cluster_alias": pa.array(aliases),
            "abc_sample_id": uuid,
        }
    )


def write_metadata(path: Path, n_cells: int, seed: int = 0) -> None:
    """The benchmark's cell_metadata.csv, in random row order."""
    rng = np.random.default_rng(seed)
    sizes = cluster_sizes(rng, n_cells)
    aliases = rng.permutation(np.repeat(np.arange(1, N_CLUSTERS + 1), sizes))
    barcodes = rng.permutation(n_cells) * 1000 + rng.integers(0, 1000, n_cells)
    tmp = path.with_suffix(".tmp")
    options = pcsv.WriteOptions(quoting_style="none", include_header=False)
    with open(tmp, "wb") as sink:
        sink.write((",".join(COLUMNS) + "\n").encode())
        for start in range(0, n_cells, CHUNK):
            stop = start + CHUNK
            chunk = metadata_chunk(rng, aliases[start:stop], barcodes[start:stop])
            pcsv.write_csv(chunk, sink, write_options=options)
    tmp.replace(path)


def taxonomy_terms() -> dict:
    """Each cluster's terms: 34 classes, 338 subclasses, 1,201 supertypes, 5,322 clusters."""
    alias = np.arange(1, N_CLUSTERS + 1)
    supertype = (alias - 1) * 1201 // N_CLUSTERS
    subclass = supertype * 338 // 1201
    klass = subclass * 34 // 338
    return {
        "cluster_alias": alias,
        "neurotransmitter": np.where(alias % 5 == 0, "NA", "Glut"),
        "class": [f"{k + 1:02d} class" for k in klass],
        "subclass": [f"{s + 1:03d} subclass" for s in subclass],
        "supertype": [f"{t + 1:04d} supertype" for t in supertype],
        "cluster": [f"{a:04d} cluster" for a in alias],
    }


def write_taxonomy(path: Path) -> None:
    """The pivoted taxonomy of ``taxonomy_terms``."""
    pcsv.write_csv(pa.table(taxonomy_terms()), path, pcsv.WriteOptions(quoting_style="none"))


OURS = """
import sys
sys.path.insert(0, {scripts!r})
from abc_downsample.sampling.sample import sample_to_files
sample_to_files(
    {metadata!r}, {taxonomy!r}, {config!r},
    {out!r} + "/downsampled_cells.csv", {out!r} + "/sampling_summary.csv",
    {out!r} + "/sampling_levels.csv", {out!r} + "/cell_rows.arrow",
    {out!r} + "/population.json",
)
"""

PLAIN = """
import pandas as pd
cells = pd.read_csv({metadata!r})
small = cells.groupby("cluster_alias")["cell_label"].transform("size") < 50
rest = cells[~small].sample(n={target} - int(small.sum()), random_state=1)
pd.concat([cells[small], rest])[["cell_label", "cluster_alias"]].to_csv({out!r} + "/plain.csv")
"""


def measure(code: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of a fresh Python."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %U %S %M", sys.executable, "-c", code],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    wall, user, system, rss_kb = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), float(user) + float(system), int(rss_kb) / 1024


def report(name: str, code: str, runs: int) -> dict:
    walls, cpus, rss = zip(*(measure(code) for _ in range(runs)), strict=True)
    result = {
        "name": name,
        "wall_s_median": round(statistics.median(walls), 2),
        "wall_s_min": round(min(walls), 2),
        "wall_s_all": [round(w, 2) for w in walls],
        "cpu_s_median": round(statistics.median(cpus), 2),
        "peak_rss_mib_median": round(statistics.median(rss)),
        "load_average_1min": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=N_CELLS)
    parser.add_argument("--skip-plain", action="store_true")
    parser.add_argument("--strategy", default="proportional")
    parser.add_argument("--min-cells-per-group", type=int, default=0, help="the floor")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    metadata = WORK / f"cell_metadata_{args.rows}.csv"
    taxonomy = WORK / "taxonomy_pivoted.csv"
    if not metadata.exists():
        print(f"generating {metadata} ...", flush=True)
        write_metadata(metadata, args.rows)
    if not taxonomy.exists():
        write_taxonomy(taxonomy)
    print(f"metadata: {metadata.stat().st_size / 1e9:.2f} GB, {args.rows} rows", flush=True)

    out = WORK / "out"
    out.mkdir(exist_ok=True)
    config = {
        "target_cells": 200_000,
        "min_cluster_size": 50,
        "seed": 20230722,
        "strategy": args.strategy,
        "min_cells_per_group": args.min_cells_per_group,
        "cluster_column": "cluster_alias",
        "filters": {},
        "cells_file": None,
    }
    paths = {"metadata": str(metadata), "taxonomy": str(taxonomy), "out": str(out)}
    ours = OURS.format(scripts=str(ROOT / "scripts"), config=config, **paths)
    floor = f", floor {args.min_cells_per_group}" if args.min_cells_per_group else ""
    report(f"sampling step ({args.strategy}{floor})", ours, args.runs)
    if not args.skip_plain:
        report("plain pandas", PLAIN.format(target=200_000, **paths), args.runs)


if __name__ == "__main__":
    main()
