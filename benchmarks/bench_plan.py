"""The plan's estimates against what the run then measured, per transfer mode.

    python benchmarks/bench_plan.py [--release demo bench] [--scale 0.1] [--genes 500]
        [--latency-ms 30] [--conn-mbps 20] [--mbps 60] [--modes download stream auto]
        [--work DIR] [--cores 1]

Serves a release from bench_stream.py's S3-like range server behind throttle_proxy.py (each
request delayed ``--latency-ms``, each connection ``--conn-mbps`` MB/s, all of them
``--mbps``): ``demo`` is the offline demo's synthetic release (6,000 cells, 6 small
matrices), ``bench`` bench_whole_run.py's release at the atlas's shape (24 matrices, 5,322
clusters) with ``--scale`` of its 4,042,976 cells. ``abc.link`` is set to that link
(latency, per-connection and total rates), its client CPU per request and gzip decoding
rate measured on this machine as bench_stream.py does. Then per mode, in a fresh project
and cache: ``snakemake plan`` (timed: the plan's own cost), then the run, its subset jobs
one at a time (``--cores 1``: the plan adds up the jobs' times). Measured per matrix, from
each subset job's log: bytes fetched (a stream's own count; a download's file size) and the
seconds it waited for the bucket (what the plan's time is: the job's local work, e.g.
writing its subset, is apart, reported as ``job_seconds``); and what ``data/`` holds after
(the subsets and the result) against the plan's disk figure.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from bench_stream import decode_mbps, proxy_command, start

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "scripts"))
from abc_downsample.subset.local import parse_summary  # noqa: E402

BUCKET = "allen-brain-cell-atlas"
TARGET = 200_000  # the default sample, scaled with the release
FETCHED = re.compile(r"stream \S+: fetched [\d,.]+ MB \(([\d,]+) bytes\)")
AUTO = re.compile(r"auto \S+: .*\(planning read ([\d,.]+) MB\): (stream|download)")


def build(release: str, work: Path, scale: float, genes: int) -> tuple[Path, dict]:
    """The release's bucket directory and the sampling settings (the demo's, or the
    default ones scaled with the release)."""
    if release == "demo":
        from abc_downsample.demo.release import write_release

        bucket = work / "demo" / "bucket"
        if not bucket.exists():
            write_release(bucket, release="20250531", n_cells=6000, n_genes=120, seed=0)
        return bucket, {"target_cells": 1500, "min_cluster_size": 50}
    from bench_sampling import N_CELLS
    from bench_whole_run import build_release

    where = work / f"bench-{scale:g}"
    build_release(where, genes, round(N_CELLS * scale), with_matrices=True)
    sampling = {"target_cells": round(TARGET * scale), "min_cluster_size": round(50 * scale)}
    return where / "bucket", sampling


def largest_matrix(bucket: Path) -> Path:
    return max(bucket.rglob("*-raw.h5ad"), key=lambda p: p.stat().st_size)


def request_cpu_ms(bare_endpoint: str, key: str, size: int) -> float:
    """Wall time per small GET, 32 in flight, through a proxy without latency."""
    from abc_downsample.cache.store import open_store

    store = open_store(BUCKET, bare_endpoint, retries=5, max_pool=32, read_timeout=120,
                       anonymous=True)  # fmt: skip
    step = max(4096, size // 2000)
    small = [(i * step, i * step + 1024) for i in range(min(2000, size // step - 1))]
    store.read_ranges(key, small[:64], max_workers=32)  # open the connections
    started = time.perf_counter()
    store.read_ranges(key, small, max_workers=32)
    return 1000 * (time.perf_counter() - started) / len(small)


def link(args, bucket: Path, server_port: int) -> dict:
    """abc.link for the proxy's link; client CPU and decoding measured here."""
    bare, bare_port = start(proxy_command(args, server_port, latency_ms=0))
    matrix = largest_matrix(bucket)
    try:
        key = str(matrix.relative_to(bucket))
        cpu = request_cpu_ms(f"http://127.0.0.1:{bare_port}", key, matrix.stat().st_size)
    finally:
        bare.kill()
        bare.wait()
    model = {
        "latency_ms": args.latency_ms,
        "connection_mbps": args.conn_mbps,
        "total_mbps": args.mbps,
        "request_cpu_ms": round(cpu, 3),
    }
    decode = max((decode_mbps(p) for p in bucket.rglob("*-raw.h5ad")), default=0.0)
    if decode:
        model["decode_mbps"] = round(decode)
    return model


def snakemake(project: Path, cores: int, *targets: str) -> tuple[float, str]:
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow" / "Snakefile"),
        "--directory", str(project), "--cores", str(cores),
        "--configfile", str(ROOT / "config" / "config.yaml"), str(project / "bench.yaml"),
        "--", *targets,
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=7200)
    if result.returncode:
        raise SystemExit(f"snakemake {' '.join(targets)} failed:\n{result.stderr[-4000:]}")
    return time.perf_counter() - started, result.stderr


def measured(project: Path, sizes: dict) -> dict:
    """Per matrix: (how, bytes fetched, seconds), from its subset job's log."""
    found = {}
    for log in (project / "data" / "logs" / "subset_matrix").glob("*.log"):
        text = log.read_text()
        stats = parse_summary(text)
        if stats is None:  # no summary line: the job did not finish
            continue
        how = stats.transfer
        planning = AUTO.findall(text)
        opening = float(planning[-1][0].replace(",", "")) * 1e6 if planning else 0
        if how == "stream":
            nbytes = int(FETCHED.findall(text)[-1].replace(",", ""))
        else:
            nbytes = (sizes[log.stem] + opening) if how == "download" else 0
        found[log.stem] = {"how": how, "bytes": nbytes, "seconds": stats.waited,
                           "job_seconds": stats.seconds}
    return found


def run_mode(args, work: Path, endpoint: str, model: dict, sampling: dict, mode: str) -> dict:
    project = work / "runs" / mode
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    config = {
        "abc": {"bucket": BUCKET, "endpoint_url": endpoint, "cache_dir": "abc_data",
                "transfer": mode, "link": model},  # fmt: skip
        "sampling": sampling,
    }
    (project / "bench.yaml").write_text(yaml.safe_dump(config))
    plan_seconds, plan_output = snakemake(project, args.cores, "plan")
    run_seconds, _ = snakemake(project, args.cores, "data/downsampled_expression.h5ad")
    plan = json.loads((project / "data" / ".abc" / "plan.json").read_text())
    sizes = {m["matrix"]: m["file_bytes"] for m in plan["matrices"]}
    got = measured(project, sizes)
    planned_bytes = sum(m[mode]["bytes"] for m in plan["matrices"])
    planned_seconds = sum(m[mode]["seconds"] for m in plan["matrices"])
    got_bytes = sum(g["bytes"] for g in got.values())
    data = [*(project / "data" / "subsets").glob("*.h5ad"),
            project / "data" / "downsampled_expression.h5ad"]  # fmt: skip
    got_seconds = sum(g["seconds"] for g in got.values())
    return {
        "mode": mode,
        "matrices": len(got),
        "planned_bytes": planned_bytes,
        "measured_bytes": got_bytes,
        "bytes_ratio": round(planned_bytes / got_bytes, 3) if got_bytes else None,
        "planned_seconds": round(planned_seconds, 2),
        "measured_seconds": round(got_seconds, 2),
        "seconds_ratio": round(planned_seconds / got_seconds, 3) if got_seconds else None,
        "job_seconds": round(sum(g["job_seconds"] for g in got.values()), 2),
        "planned_data_bytes": plan["disk"]["data"],
        "measured_data_bytes": sum(path.stat().st_size for path in data),
        "auto_choices": dict(plan["modes"]["auto"]["files"]),
        "measured_how": sorted({g["how"] for g in got.values()}),
        "plan_wall_s": round(plan_seconds, 1),
        "plan_read": plan["planning"],
        "run_wall_s": round(run_seconds, 1),
        "per_matrix": {
            m["matrix"]: {"planned": [m[mode]["bytes"], m[mode]["seconds"]],
                          "measured": [got[m["matrix"]]["bytes"], got[m["matrix"]]["seconds"]]}
            for m in plan["matrices"]
        },  # fmt: skip
        "plan_lines": [line for line in plan_output.splitlines() if ": plan: " in line],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", nargs="+", default=["demo", "bench"],
                        choices=["demo", "bench"])  # fmt: skip
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--genes", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--conn-mbps", type=float, default=20.0)
    parser.add_argument("--mbps", type=float, default=60.0)
    parser.add_argument("--modes", nargs="+", default=["download", "stream", "auto"])
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "plan")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    for release in args.release:
        work = args.work.resolve() / release
        bucket, sampling = build(release, args.work.resolve(), args.scale, args.genes)
        server, port = start([sys.executable, str(HERE / "bench_stream.py"), "serve",
                              "--root", str(bucket)])  # fmt: skip
        proxy, proxy_port = start(proxy_command(args, port, args.latency_ms))
        try:
            model = link(args, bucket, port)
            print(json.dumps({"release": release, "link": model}), flush=True)
            for mode in args.modes:
                result = {"release": release, **run_mode(args, work, f"http://127.0.0.1:"
                                                         f"{proxy_port}", model, sampling, mode)}
                results.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "per_matrix"}),
                      flush=True)  # fmt: skip
        finally:
            for process in (proxy, server):
                process.kill()
                process.wait()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
