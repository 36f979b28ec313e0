"""Fixed cost of one subset job at the atlas's shape, whatever it reads.

    python benchmarks/bench_job_overhead.py [--cells 300000] [--sample 200000]
        [--work /tmp/bench-overhead] [--runs 3] [--profile] [--scripts DIR]
        [--under-snakemake 24]

Writes a ``downsampled_cells.csv`` of ``--sample`` cells spread over 24 matrices, and one
matrix h5ad of ``--cells`` cells as the real ones are laid out (obs index ``cell_label``
plus ``cell_barcode``, ``library_label``, ``anatomical_division_label``; var of 32,285
genes) whose X holds one non-zero a row, so what is timed is the job's fixed cost: Python
imports, reading the cell list, obs and var, writing the subset. Each run is a fresh
process importing what the rule script imports and running ``subset_matrix_file`` on the
cached file, as a download-mode job does (not timed: Snakemake's own start of a job and its
``script:`` preamble, ~0.13 s, see README); prints wall time of imports and of the job, and
with ``--profile`` the top cumulative entries of cProfile. ``--scripts`` times another
checkout of the package (``git archive <commit> scripts | tar -x -C DIR``) for a before/after.

``--under-snakemake N``: the cost of a job as Snakemake runs it, Snakemake's own per-job
work included: N subset jobs of that file (``snakemake --cores 2``), the project's rule
script run as ``script:``, as the workflow runs it; prints seconds per job (wall / N).
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE.parent / "scripts"
N_GENES = 32285
N_MATRICES = 24


def write_inputs(work: Path, n_cells: int, n_sample: int) -> tuple[Path, Path]:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    matrix = work / "WMB-10Xv3-BENCH-raw.h5ad"
    cells = work / "downsampled_cells.csv"
    if matrix.exists() and cells.exists():
        return matrix, cells
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = np.array([f"{i:016X}-{i % 500:03d}_A01" for i in range(n_cells)], dtype=object)
    obs = pd.DataFrame(
        {
            "cell_barcode": [label[:16] for label in labels],
            "library_label": pd.Categorical(rng.choice([f"L8TX_{i}" for i in range(400)], n_cells)),
            "anatomical_division_label": pd.Categorical(rng.choice(["MB", "TH", "HY"], n_cells)),
        },
        index=pd.Index(labels, name="cell_label"),
    )
    var = pd.DataFrame(
        {"gene_symbol": [f"G{i}" for i in range(N_GENES)]},
        index=pd.Index([f"ENSMUSG{i:011d}" for i in range(N_GENES)], name="gene_identifier"),
    )
    x = sp.csr_matrix(
        (np.ones(n_cells, np.float32), rng.integers(0, N_GENES, n_cells).astype(np.int32),
         np.arange(n_cells + 1)), shape=(n_cells, N_GENES),
    )  # fmt: skip
    ad.AnnData(x, obs=obs, var=var).write_h5ad(matrix)
    # this matrix gets its share of the sample; the others fill the rest of the table
    mine = rng.choice(labels, n_sample // N_MATRICES, replace=False)
    others = [f"OTHER{i:011d}-000_A01" for i in range(n_sample - len(mine))]
    names = [f"WMB-10Xv3-M{i:02d}" for i in range(N_MATRICES - 1)]
    table = pd.DataFrame(
        {
            "cell_label": np.r_[mine, others],
            "cluster_alias": rng.integers(1, 5322, n_sample),
            "feature_matrix_label": np.r_[
                np.full(len(mine), "WMB-10Xv3-BENCH"), rng.choice(names, len(others))
            ],
            "dataset_label": "WMB-10Xv3",
            "library_method": "10Xv3",
        }
    ).sample(frac=1, random_state=1)
    table.to_csv(cells, index=False)
    return matrix, cells


JOB = """
import time, sys
t0 = time.perf_counter()
sys.path.insert(0, {scripts!r})
from abc_downsample import atomic, rule_io
from abc_downsample.cache import layout as cache  # the rule script's own imports
from abc_downsample.release.manifest import FileEntry
from abc_downsample.subset.job import subset_matrix_file
t1 = time.perf_counter()
# the cache filled (abc.verify "size": trusted after a stat), kept after the job
entry = FileEntry("", "", "", None, {name!r}, {size}, "", "")
abc = {{"cache_dir": {work!r}, "verify": "size", "keep_matrices": True, "download": {{}},
       "transfer": "download", "download_on_host": False}}
{profile_start}
subset_matrix_file(abc, entry, {cells!r}, {out!r}, "WMB-10Xv3-BENCH", True)
{profile_end}
t2 = time.perf_counter()
print(f"imports {{t1 - t0:.2f}} s, job {{t2 - t1:.2f}} s")
"""


SNAKEFILE = """
config["abc"] = {abc!r}
rule all:
    input: expand("out/{{i}}.h5ad", i=range({n}))
rule subset_matrix:
    input: cells={cells!r}
    output: h5ad="out/{{i}}.h5ad", done="done/{{i}}.json"
    params: matrix="WMB-10Xv3-BENCH", file={file!r}, settings={{"variant": "raw"}}
    log: "logs/{{i}}.log"
    script: {script!r}
"""


def under_snakemake(work: Path, matrix: Path, cells: Path, n_jobs: int, runs: int) -> None:
    """Seconds per job of N subset jobs under Snakemake."""
    script = str(SCRIPTS.parent / "scripts" / "subset_matrix.py")
    abc = {"cache_dir": str(matrix.parent), "verify": "size", "keep_matrices": True,
           "download": {}, "transfer": "download", "download_on_host": False}  # fmt: skip
    fields = {"relative_path": matrix.name, "size": matrix.stat().st_size, "md5": ""}
    for run in range(runs):
        directory = work / "snakemake"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        (directory / "Snakefile").write_text(SNAKEFILE.format(
            abc=abc, n=n_jobs, cells=str(cells), file=fields, script=script))  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "2", "-q"],
            cwd=directory, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        wall = time.perf_counter() - start
        print(f"run {run}: {wall:.1f} s for {n_jobs} jobs, "
              f"{wall / n_jobs:.2f} s a job (2 cores)", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300_000)
    parser.add_argument("--sample", type=int, default=200_000)
    parser.add_argument("--work", default="/tmp/bench-overhead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--scripts", default=str(SCRIPTS), help="the package to time")
    parser.add_argument("--under-snakemake", type=int, default=0, metavar="N")
    args = parser.parse_args()
    matrix, cells = write_inputs(Path(args.work), args.cells, args.sample)
    if args.under_snakemake:
        work = Path(args.work).resolve()
        return under_snakemake(work, matrix.resolve(), cells.resolve(), args.under_snakemake,
                               args.runs)  # fmt: skip
    out = Path(args.work) / "subset.h5ad"
    profile = (
        ("import cProfile, pstats; p = cProfile.Profile(); p.enable()",
         "p.disable(); pstats.Stats(p).sort_stats('cumulative').print_stats(25)")
        if args.profile else ("", "")
    )  # fmt: skip
    code = JOB.format(
        scripts=args.scripts, work=str(matrix.parent), name=matrix.name,
        size=matrix.stat().st_size, cells=str(cells), out=str(out),
        profile_start=profile[0], profile_end=profile[1],
    )  # fmt: skip
    for _ in range(args.runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        print(done.stdout.strip()[-6000:] if args.profile else done.stdout.strip(),
              f"| process {time.perf_counter() - start:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
