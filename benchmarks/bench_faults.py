"""Reliability under injected network faults, stream or download mode: the table users read.

    python benchmarks/bench_faults.py [--mode stream|download] [--size-mb 40] [--runs 10]
        [--fraction 0.05] [--timeout 120] [--work /tmp/bench-faults]

``--mode download`` runs a download subset job instead: the matrix into a fresh cache
(``download.use_cached``: ranged parts, MD5 verified, fetched again on a mismatch), then
``subset.subset_local_file``.

Writes a matrix as ``AnnData.write_h5ad`` writes it (X chunked, h5py's automatic chunk
size, uncompressed; real row sizes), serves it with bench_stream's range server on
127.0.0.1 behind the tests' fault proxy (``tests/fault_proxy.py``), and runs stream
mode's subset job (``subset.job.subset_from_config``, plain http, 8 in flight, 10 tries
a request, 1 s read timeout) ``--runs`` times per fault, each in its own process bounded
by ``--timeout``. Faults are drawn per request from a seeded generator (a different seed
per run). For each fault it prints runs, runs finished (exit 0), finished identical to a
clean run, runs failed with one error line, runs hung (killed at the timeout), and the
median bytes refetched (served beyond a clean run's) and time lost against a clean run.
"""

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests"), str(HERE.parent / "scripts")]

from bench_stream import BUCKET, KEY, MATRIX, start, write_matrix, write_sample  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

JOB = """
import json, sys
sys.path.insert(0, {scripts!r})
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.subset.job import subset_from_config
from abc_downsample.rule_io import run
run(lambda: subset_from_config(abc_with_defaults(json.loads(sys.argv[1])), *sys.argv[2:6]))
"""

DOWNLOAD_JOB = """
import json, sys
sys.path.insert(0, {scripts!r})
from abc_downsample.config_check import abc_with_defaults
from abc_downsample.cache.download import use_cached
from abc_downsample.release.manifest import FileEntry
from abc_downsample.rule_io import run
from abc_downsample.subset.local import subset_local_file
abc = abc_with_defaults(json.loads(sys.argv[1]))
key, cells, out, matrix, size, md5 = sys.argv[2:8]
entry = FileEntry("", "", "", None, key, int(size), md5, "")
run(lambda: subset_local_file(use_cached(entry, abc), cells, out, matrix))
"""

FAULTS = {
    "none (clean)": {},
    "503 on 15 % of requests": {"fail": 0.15},
    "15 % of answers cut mid-body": {"cut": 0.15},
    "5 % of answers stalled 2 s (timeout 1 s)": {"stall": 0.05},
    "combined: 15 % 503 + 15 % cut + 5 % stall": {"fail": 0.15, "cut": 0.15, "stall": 0.05},
    "1 % of row answers with a flipped byte": {"flip": 0.01},
}


def rows_span(path: Path) -> tuple[int, int]:
    import h5py

    from abc_downsample.stream.layout import dataset_layout

    with h5py.File(path) as f:
        edges = []
        for name in ("X/data", "X/indices"):
            layout = dataset_layout(f[name])
            edges += [int(layout.offsets.min()), int((layout.offsets + layout.sizes).max())]
    return min(edges), max(edges)


def run_once(proxy, args, cells: Path, out: Path) -> tuple[str, float]:
    cache = Path(args.work) / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    abc = {
        "bucket": BUCKET,
        "endpoint_url": proxy.url,
        "cache_dir": str(cache),
        "download": {"retries": 10, "part_size_mb": 5, "max_concurrency": 8},
        "stream": {"max_concurrency": 8, "merge_gap_kb": 64, "timeout_s": 1.0},
    }
    out.unlink(missing_ok=True)
    job = DOWNLOAD_JOB if args.mode == "download" else JOB
    code = job.format(scripts=str(HERE.parent / "scripts"))
    command = [sys.executable, "-c", code, json.dumps(abc), KEY, str(cells), str(out), MATRIX]
    if args.mode == "download":
        command += [str(args.file_size), args.file_md5]
    begin = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return "hung", time.perf_counter() - begin
    seconds = time.perf_counter() - begin
    if done.returncode == 0:
        return "finished", seconds
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    one_line = last.startswith("abc-downsample: error:") and "Traceback" not in done.stderr
    return ("failed: " + last[23:120]) if one_line else ("crashed: " + last[:200]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["stream", "download"], default="stream")
    parser.add_argument("--size-mb", type=float, default=40)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--work", default="/tmp/bench-faults")
    parser.add_argument("--only", nargs="*", help="faults whose name starts with these")
    args = parser.parse_args()
    work = Path(args.work)
    matrix = work / "bucket" / KEY
    if not matrix.exists():
        write_matrix(matrix, args.size_mb / 1000, "chunked")
    args.file_size = matrix.stat().st_size
    args.file_md5 = hashlib.md5(matrix.read_bytes()).hexdigest()
    cells = work / "cells.csv"
    write_sample(matrix, cells, args.fraction)
    server, port = start([sys.executable, str(HERE / "bench_stream.py"), "serve", "--root",
                          str(work / "bucket")])  # fmt: skip
    proxy = FaultProxy(f"http://127.0.0.1:{port}")
    span = rows_span(matrix)
    print(f"{matrix.stat().st_size / 1e6:.0f} MB file, {args.fraction:.0%} of its cells, "
          f"{args.runs} runs a fault", flush=True)  # fmt: skip
    print("| fault | runs | finished | identical | failed (one line) | crashed | hung | "
          "bytes refetched (median) | time lost (median) |\n|---|---|---|---|---|---|---|---|---|")
    clean_bytes = clean_seconds = reference = None
    try:
        for name, rates in FAULTS.items():
            if args.only and rates and not name.startswith(tuple(args.only)):
                continue
            outcomes, served, seconds, same, reasons = [], [], [], 0, set()
            for seed in range(args.runs if rates else 3):
                proxy.reset()
                proxy.chaos(seed=seed, stall_seconds=2.0, **rates)
                proxy.flip_within = span
                out = work / "out.h5ad"
                outcome, took = run_once(proxy, args, cells, out)
                outcomes.append(outcome.split(":")[0])
                served.append(proxy.bytes_served)
                seconds.append(took)
                if outcome == "finished":
                    data = out.read_bytes()
                    reference = reference or data
                    same += data == reference
                elif outcome.startswith(("failed", "crashed")):
                    reasons.add(outcome)
            if not rates:
                clean_bytes, clean_seconds = statistics.median(served), statistics.median(seconds)
            refetched = statistics.median(served) - clean_bytes
            lost = statistics.median(seconds) - clean_seconds
            print(f"| {name} | {len(outcomes)} | {outcomes.count('finished')} | {same} | "
                  f"{outcomes.count('failed')} | {outcomes.count('crashed')} | "
                  f"{outcomes.count('hung')} | "
                  f"{refetched / 1e6:+.1f} MB ({refetched / clean_bytes:+.0%}) | "
                  f"{lost:+.1f} s ({lost / clean_seconds:+.0%}) |", flush=True)  # fmt: skip
            for reason in sorted(reasons):
                print(f"    {reason}", flush=True)
    finally:
        proxy.close()
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
