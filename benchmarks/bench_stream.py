"""Stream, download + subset and auto on a >= 1 GB matrix behind a throttled link.

    python benchmarks/bench_stream.py [--size-gb 1.1] [--fraction 0.05] [--conn-mbps 50]
        [--mbps 0] [--latency-ms 20] [--layouts contiguous chunked gzip] [--work DIR] [--keep]
    python benchmarks/bench_stream.py engines [--ranges 4000] [--range-kb 16]

Writes an h5ad shaped like the real files (32,285 genes, ~5,000 non-zeros a cell,
float32 counts + int32 indices) per layout under ``--work``: X contiguous, chunked as
``AnnData.write_h5ad`` writes it (resizable, h5py's automatic chunk size, no filter) or
the same chunks gzip-compressed. Serves it from a small S3-compatible range server
(moto's server copies the whole object for every ranged GET, ~0.7 ms per MB of object,
so it cannot serve a 1 GB file by ranges), puts throttle_proxy.py in front, then times
in separate processes:
- stream: ``stream.source.open_remote`` + ``subset.local.subset_matrix`` of a random ``--fraction``;
- download: ``download.fetch_file`` (64 MB parts, 8 in flight, MD5) + ``subset_local_file``;
- auto: ``subset.job.subset_auto``, its link model the proxy's latency and per-connection
  rate with the rest calibrated on this machine (``calibrate``: a download's rate, the
  wall time per small GET at 32 in flight, stream's chunk-decoding rate);
- auto made to download: the same with requests made costly, for what planning adds.
Reports bytes and requests fetched (opening + indptr, rows, obs/var), bytes fetched for
the rows / the selected rows' bytes, wall time and peak RSS, and checks the outputs are
byte-identical. ``engines`` compares clients on many small ranges (no throttle): client
CPU per request is what limits ~400k ranges at real scale.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "stream"
sys.path.insert(0, str(HERE.parent / "scripts"))

BUCKET = "allen-brain-cell-atlas"
KEY = "expression_matrices/WMB-bench/20230630/WMB-bench-raw.h5ad"
MATRIX = "WMB-bench"
N_GENES = 32285
NNZ_PER_CELL = 5000


# -- the test matrix ------------------------------------------------------------------------


def write_matrix(path: Path, size_gb: float, layout: str, seed: int = 1) -> int:
    """An h5ad of about ``size_gb`` GB: obs/var/uns by anndata, X appended row block-wise."""
    import anndata as ad
    import h5py
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_cells = int(size_gb * 1e9 / (8 * NNZ_PER_CELL))
    lengths = rng.integers(NNZ_PER_CELL // 5, 2 * NNZ_PER_CELL - NNZ_PER_CELL // 5, n_cells)
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    obs = pd.DataFrame(
        {"library_label": pd.Categorical(rng.choice(["L1", "L2", "L3"], n_cells))},
        index=pd.Index([f"CELL{i:08d}-bench" for i in range(n_cells)], name="cell_label"),
    )
    var = pd.DataFrame(index=pd.Index([f"ENSMUSG{i:011d}" for i in range(N_GENES)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    ad.AnnData(obs=obs, var=var, uns={"normalization": "raw"}).write_h5ad(path)
    # as anndata writes it: resizable, so chunked with h5py's automatic chunk size
    resizable = {"chunks": True, "maxshape": (None,)}
    options = {
        "contiguous": {},
        "chunked": resizable,
        "gzip": {**resizable, "compression": "gzip"},
    }[layout]
    with h5py.File(path, "a") as f:
        x = f.create_group("X")
        x.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        x.attrs["shape"] = np.array([n_cells, N_GENES], dtype=np.int64)
        data = x.create_dataset("data", (indptr[-1],), np.float32, **options)
        indices = x.create_dataset("indices", (indptr[-1],), np.int32, **options)
        x.create_dataset("indptr", data=indptr)
        for first in range(0, n_cells, 500):
            last = min(n_cells, first + 500)
            block = [np.sort(rng.choice(N_GENES, n, replace=False)) for n in lengths[first:last]]
            span = np.s_[indptr[first] : indptr[last]]
            indices[span] = np.concatenate(block).astype(np.int32)
            data[span] = rng.geometric(0.4, int(indptr[last] - indptr[first])).astype(np.float32)
    return n_cells


# -- a small S3-compatible server: HEAD and ranged GET of files under a root ---------------


def range_server(root: Path, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers + body wait for a delayed ACK (40 ms)

        def log_message(self, *args):
            pass

        def _path(self) -> Path | None:
            bucket, _, key = self.path.split("?")[0].lstrip("/").partition("/")
            path = root / key
            return path if bucket == BUCKET and path.is_file() else None

        def _head(self, status: int, length: int, size: int, extra: dict) -> None:
            self.send_response(status)
            headers = {
                "Content-Length": str(length),
                "Content-Type": "binary/octet-stream",
                "ETag": f'"{size:x}"',
                "Last-Modified": formatdate(0, usegmt=True),
                "Accept-Ranges": "bytes",
                **extra,
            }
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def do_HEAD(self):
            path = self._path()
            if path is None:
                self._head(404, 0, 0, {})
                return
            size = path.stat().st_size
            self._head(200, size, size, {})

        def do_GET(self):
            path = self._path()
            if path is None:
                self._head(404, 0, 0, {})
                return
            size = path.stat().st_size
            start, stop = 0, size
            spec = self.headers.get("Range")
            if spec:
                first, last = spec.split("=")[1].split("-")
                if first:  # "a-b" or open-ended "a-"
                    start, stop = int(first), min(size, int(last or size - 1) + 1)
                else:  # suffix "-n"
                    start = max(0, size - int(last))
            extra = {"Content-Range": f"bytes {start}-{stop - 1}/{size}"} if spec else {}
            self._head(206 if spec else 200, stop - start, size, extra)
            with open(path, "rb") as f:
                f.seek(start)
                left = stop - start
                while left:
                    piece = f.read(min(left, 1 << 20))
                    self.wfile.write(piece)
                    left -= len(piece)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # the listen backlog, read when the socket starts listening: with the default (5)
        # a burst of new connections (stream opens 32) lost SYNs, each a 1 s retransmit
        request_queue_size = 512

    server = Server(("127.0.0.1", port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


def start(command: list[str]) -> tuple[subprocess.Popen, int]:
    """A helper process that prints ``listening <port>`` when ready."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().split()
    if not line or line[0] != "listening":
        process.kill()
        raise RuntimeError(f"{command[1]} did not start")
    return process, int(line[1])


# -- the two jobs (each in its own process, for a clean peak RSS) --------------------------


def bench_store(endpoint: str, workers: int):
    """Our store as a job opens it (the config's retries and timeouts), ``workers`` wide."""
    from abc_downsample.cache.store import store_from_config
    from abc_downsample.config_check import abc_with_defaults

    abc = abc_with_defaults(
        {"bucket": BUCKET, "endpoint_url": endpoint, "stream": {"max_concurrency": workers}}
    )
    return store_from_config(abc, "stream")


def job_stream(endpoint: str, cells: str, out: str, workers: int, gap_kb: int) -> dict:
    from abc_downsample.stream.source import open_remote
    from abc_downsample.subset.local import labels_for_matrix, subset_matrix

    start_time = time.perf_counter()
    store = bench_store(endpoint, workers)
    labels = labels_for_matrix(cells, MATRIX)
    rows = {"bytes": 0, "requests": 0}
    with open_remote(store, KEY, workers, gap_kb) as source:
        opened = source.stats.bytes, source.stats.requests  # superblock..X headers + indptr
        read_runs = source.read_runs

        def counted(runs):
            before = source.stats.bytes, source.stats.requests
            result = read_runs(runs)
            rows["bytes"] += source.stats.bytes - before[0]
            rows["requests"] += source.stats.requests - before[1]
            return result

        source.read_runs = counted
        stats = subset_matrix(source.h5, labels, out, matrix=MATRIX, source=source)
        fetched, requests, size = source.stats.bytes, source.stats.requests, source.size
        chunk = getattr(source.layouts[0], "chunk_len", 0)
    return {
        "seconds": time.perf_counter() - start_time,
        "bytes": fetched,
        "requests": requests,
        "open_bytes": opened[0],
        "open_requests": opened[1],
        "row_bytes": rows["bytes"],
        "row_requests": rows["requests"],
        "selected_bytes": stats.nnz * 8,
        "file_size": size,
        "rows": stats.rows,
        "chunk_kb": chunk * 4 / 1024,
    }


def fetch(endpoint: str, dest: str) -> str:
    from abc_downsample.cache.download import fetch_file

    store = bench_store(endpoint, 8)
    Path(dest).unlink(missing_ok=True)
    settings = {"part_size": 64 * 2**20, "max_concurrency": 8, "retries": 5}
    fetch_file(store, KEY, dest, size=store.size(KEY), md5=None, **settings)
    return dest


def job_download(endpoint: str, cells: str, out: str, dest: str, workers: int) -> dict:
    from abc_downsample.subset.local import subset_local_file

    start_time = time.perf_counter()
    fetch(endpoint, dest)
    downloaded = time.perf_counter() - start_time
    stats = subset_local_file(dest, cells, out, MATRIX)
    return {
        "seconds": time.perf_counter() - start_time,
        "download_seconds": downloaded,
        "bytes": os.path.getsize(dest),
        "rows": stats.rows,
    }


def job_auto(endpoint: str, cells: str, out: str, dest: str, link: str) -> dict:
    import logging

    from abc_downsample.config_check import abc_with_defaults
    from abc_downsample.stream.plan import Link
    from abc_downsample.subset.job import subset_auto

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("abc_downsample").addHandler(handler)
    logging.getLogger("abc_downsample").setLevel(logging.INFO)
    start_time = time.perf_counter()
    store = bench_store(endpoint, 32)
    model = Link.from_config(abc_with_defaults({"link": json.loads(link)})["link"])
    stats = subset_auto(
        store, KEY, cells, out, MATRIX, lambda: fetch(endpoint, dest),
        link=model, download=abc_with_defaults({"download": {"max_concurrency": 8}})["download"],
        max_concurrency=32, merge_gap_kb=64,
    )  # fmt: skip
    plan = next(line for line in lines if line.startswith("auto "))
    return {"seconds": time.perf_counter() - start_time, "plan": plan, "rows": stats.rows}


def run_job(name: str, args: list[str]) -> dict:
    command = [sys.executable, __file__, f"job-{name}", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode:
        raise RuntimeError(f"{name} job failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def with_peak_rss(job) -> None:
    report = job()
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(report))


# -- the link model, calibrated on this machine --------------------------------------------


def calibrate(endpoint: str, bare_endpoint: str, matrix: Path, dest: Path) -> dict:
    """auto's link figures as this machine delivers them (client, proxy and server share
    its cores): ``total_mbps`` from a download of the file as download mode does it,
    ``request_cpu_ms`` from 2,000 small GETs, 32 in flight, through a proxy without
    latency (CPU-bound: wall time per request), ``decode_mbps`` from decoding the file's
    compressed chunks as stream mode does (none: the default stays)."""

    t = time.perf_counter()
    fetch(endpoint, str(dest))
    figures = {"total_mbps": matrix.stat().st_size / 1e6 / (time.perf_counter() - t)}
    dest.unlink()
    bare = bench_store(bare_endpoint, 32)
    small = [(i * 65536, i * 65536 + 4096) for i in range(2000)]
    bare.read_ranges(KEY, small[:64], max_workers=32)  # open the connections
    t = time.perf_counter()
    bare.read_ranges(KEY, small, max_workers=32)
    figures["request_cpu_ms"] = 1000 * (time.perf_counter() - t) / len(small)
    decode = decode_mbps(matrix)
    if decode:
        figures["decode_mbps"] = decode
    return figures


def decode_mbps(matrix: Path, n_chunks: int = 1000) -> float:
    """MB/s out of stream mode's chunk decoding (its threads) on this file, 0 if unfiltered."""
    import h5py

    from abc_downsample.stream.layout import (
        DECODE_THREADS,
        ChunkedLayout,
        dataset_layout,
        decode_chunk,
    )

    with h5py.File(matrix) as f:
        layouts = [dataset_layout(f["X"][name]) for name in ("data", "indices")]
    layouts = [lay for lay in layouts if isinstance(lay, ChunkedLayout) and not lay.unfiltered]
    if not layouts:
        return 0.0
    jobs = []
    with open(matrix, "rb") as raw:
        for lay in layouts:
            for chunk in range(min(n_chunks // len(layouts), len(lay.sizes))):
                raw.seek(int(lay.offsets[chunk]))
                jobs.append((lay, raw.read(int(lay.sizes[chunk])), int(lay.masks[chunk])))

    def one(job):
        lay, blob, mask = job
        return len(decode_chunk(blob, lay.filters, mask, lay.dtype.itemsize, lay.chunk_bytes))

    t = time.perf_counter()
    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        out = sum(pool.map(one, jobs))
    return out / 1e6 / (time.perf_counter() - t)


# -- the comparison -------------------------------------------------------------------------


def compare(args) -> None:
    work = Path(args.work)
    results = []
    for layout in args.layouts:
        results.append(compare_layout(args, work, layout))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def compare_layout(args, work: Path, layout: str) -> dict:
    root = work / layout / "bucket"
    matrix = root / KEY
    if not matrix.exists() or args.rebuild:
        t = time.perf_counter()
        n_cells = write_matrix(matrix, args.size_gb, layout)
        print(
            f"wrote {matrix.stat().st_size / 1e9:.2f} GB, {n_cells:,} cells "
            f"({layout}) in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    cells = work / "cells.csv"
    write_sample(matrix, cells, args.fraction)
    server, port = start([sys.executable, __file__, "serve", "--root", str(root)])
    proxy, proxy_port = start(proxy_command(args, port, args.latency_ms))
    endpoint = f"http://127.0.0.1:{proxy_port}"
    names = ("stream", "download", "auto", "planned-download")
    outs = {name: work / f"subset-{name}.h5ad" for name in names}
    downloaded = work / "download" / Path(KEY).name
    try:
        model = link_model(args, endpoint, port, matrix, downloaded)
        # auto made to download (a request "costs" 10 s): what planning adds to a download
        forced = {**model, "request_cpu_ms": 1e4}
        jobs = {  # name: (job, its arguments)
            "stream": ("stream", [endpoint, str(cells), str(outs["stream"]), str(args.workers),
                                  str(args.gap_kb)]),
            "download": ("download", [endpoint, str(cells), str(outs["download"]),
                                      str(downloaded), "8"]),
            "auto": ("auto", [endpoint, str(cells), str(outs["auto"]), str(downloaded),
                              json.dumps(model)]),
            "planned-download": ("auto", [endpoint, str(cells), str(outs["planned-download"]),
                                          str(downloaded), json.dumps(forced)]),
        }  # fmt: skip
        runs = {name: [] for name in jobs}
        for _ in range(args.runs):  # interleaved, so load changes hit all alike
            for name, (job, job_args) in jobs.items():
                runs[name].append(run_job(job, job_args))
        stream, download, auto, planned = (median_run(runs[name]) for name in jobs)
    finally:
        for process in (proxy, server):
            process.kill()
            process.wait()
    reference = outs["download"].read_bytes()
    identical = all(outs[name].read_bytes() == reference for name in outs)
    result = {"layout": layout, "link": model, "stream": stream, "download": download,
              "auto": auto, "planned_download": planned}  # fmt: skip
    report(args, layout, stream, download, auto, planned, identical)
    for path in [*outs.values(), downloaded] + ([] if args.keep else [matrix]):
        path.unlink(missing_ok=True)
    return result


def link_model(args, endpoint: str, server_port: int, matrix: Path, dest: Path) -> dict:
    """auto's link: the proxy's latency and per-connection rate, the rest calibrated."""
    bare_proxy, bare_port = start(proxy_command(args, server_port, latency_ms=0))
    try:
        measured = calibrate(endpoint, f"http://127.0.0.1:{bare_port}", matrix, dest)
    finally:
        bare_proxy.kill()
        bare_proxy.wait()
    model = {
        "latency_ms": args.latency_ms,
        "connection_mbps": args.conn_mbps or 1e4,
        **measured,
        **({"total_mbps": args.mbps} if args.mbps else {}),
    }
    print("link model: " + ", ".join(f"{k} {v:.3g}" for k, v in model.items()), flush=True)
    return model


def proxy_command(args, port: int, latency_ms: float) -> list[str]:
    return [
        sys.executable,
        str(HERE / "throttle_proxy.py"),
        "--upstream",
        f"127.0.0.1:{port}",
        "--mbps",
        str(args.mbps),
        "--conn-mbps",
        str(args.conn_mbps),
        "--latency-ms",
        str(latency_ms),
    ]


def median_run(reports: list[dict]) -> dict:
    """The first run's figures with the median wall times of all runs."""
    merged = dict(reports[0])
    for name in ("seconds", "download_seconds"):
        if name in merged:
            merged[name] = float(np.median([r[name] for r in reports]))
    merged["all_seconds"] = [round(r["seconds"], 2) for r in reports]
    return merged


def write_sample(matrix: Path, cells: Path, fraction: float) -> None:
    import h5py
    import pandas as pd

    with h5py.File(matrix) as f:
        labels = f["obs/cell_label"][:].astype(str)
    rng = np.random.default_rng(7)
    chosen = rng.choice(labels, int(len(labels) * fraction), replace=False)
    pd.DataFrame({"cell_label": chosen, "feature_matrix_label": MATRIX}).to_csv(cells, index=False)


def report(args, layout, stream, download, auto, planned, identical: bool) -> None:
    mb = 1e6
    best = min(stream["seconds"], download["seconds"])
    ratio = stream["row_bytes"] / stream["selected_bytes"]
    other = stream["bytes"] - stream["open_bytes"] - stream["row_bytes"]
    lines = [
        f"== {layout} (chunks {stream['chunk_kb']:.0f} KiB): {stream['rows']:,} cells "
        f"({args.fraction:.0%}) of a {stream['file_size'] / mb:,.0f} MB file; link "
        f"{args.conn_mbps} MB/s per connection, {args.mbps or 'no'} MB/s cap, "
        f"{args.latency_ms} ms; stream {args.workers} in flight, merge gap {args.gap_kb} KB",
        f"stream:   {stream['seconds']:6.1f} s  {stream['bytes'] / mb:8.1f} MB in "
        f"{stream['requests']:,} requests, peak RSS {stream['peak_rss_mb']:,.0f} MB",
        f"  open+indptr {stream['open_bytes'] / mb:.1f} MB / {stream['open_requests']} req; "
        f"rows {stream['row_bytes'] / mb:.1f} MB / {stream['row_requests']:,} req for "
        f"{stream['selected_bytes'] / mb:.1f} MB selected (x{ratio:.2f}); obs/var/rest "
        f"{other / mb:.1f} MB",
        f"download: {download['seconds']:6.1f} s  ({download['download_seconds']:.1f} s transfer) "
        f"{download['bytes'] / mb:8.1f} MB, peak RSS {download['peak_rss_mb']:,.0f} MB",
        f"auto:     {auto['seconds']:6.1f} s  ({auto['seconds'] / best - 1:+.0%} vs the better), "
        f"peak RSS {auto['peak_rss_mb']:,.0f} MB; {auto['plan']}",
        f"auto made to download: {planned['seconds']:6.1f} s "
        f"({planned['seconds'] / best - 1:+.0%} vs the better; planning + download + subset)",
        f"runs (s): stream {stream['all_seconds']}, download {download['all_seconds']}, "
        f"auto {auto['all_seconds']}, auto made to download {planned['all_seconds']}",
        f"stream speed-up over download {download['seconds'] / stream['seconds']:.1f}x; "
        f"outputs identical: {identical}",
    ]
    print("\n".join(lines), flush=True)


# -- client engines on many small ranges --------------------------------------------------


def engines(args) -> None:
    root = WORK / "bucket"
    key = "engines/blob.bin"
    blob = root / key
    # 2 MB apart: obstore coalesces ranges closer than 1 MB into one request
    size = args.ranges * (2 << 20)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with open(blob, "wb") as f:
        f.truncate(size)  # sparse: the server reads zeros
    server, port = start([sys.executable, __file__, "serve", "--root", str(root)])
    endpoint = f"http://127.0.0.1:{port}"
    step = size // args.ranges
    ranges = [(i * step, i * step + args.range_kb * 1024) for i in range(args.ranges)]
    try:
        for name, fetch in client_engines(endpoint, key, args.workers).items():
            fetch(ranges[:50])  # warm the connection pool
            cpu, wall = time.process_time(), time.perf_counter()
            got = fetch(ranges)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            assert all(len(b) == args.range_kb * 1024 for b in got)
            print(
                f"{name:22s} {len(ranges) / wall:7.0f} req/s wall, client CPU "
                f"{1000 * cpu / len(ranges):.2f} ms/request"
            )
    finally:
        server.kill()
        server.wait()
        blob.unlink()


def http_client_engine(endpoint: str, key: str, workers: int):
    """The floor for a Python client: one keep-alive http.client connection per thread."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlparse

    host = urlparse(endpoint)
    local = threading.local()
    path = f"/{BUCKET}/{key}"

    def one(r):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(host.hostname, host.port)
        local.conn.request("GET", path, headers={"Range": f"bytes={r[0]}-{r[1] - 1}"})
        return local.conn.getresponse().read()

    def fetch(ranges):
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, ranges))

    return fetch


def client_engines(endpoint: str, key: str, workers: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config


    store = bench_store(endpoint, workers)
    config = Config(signature_version=UNSIGNED, max_pool_connections=workers)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2", config=config)

    def boto_one(r):
        answer = client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={r[0]}-{r[1] - 1}")
        return answer["Body"].read()

    def boto_threads(ranges):
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(boto_one, ranges))

    found = {
        "storage (urllib3)": lambda ranges: store.read_ranges(key, ranges, max_workers=workers),
        "boto3 get_object": boto_threads,
        "http.client/thread": http_client_engine(endpoint, key, workers),
    }
    try:
        import obstore
        from obstore.store import S3Store

        obj = S3Store(
            BUCKET,
            endpoint=endpoint,
            skip_signature=True,
            region="us-west-2",
            client_options={"allow_http": True},
        )
        found["obstore get_ranges"] = lambda ranges: obstore.get_ranges(
            obj, key, starts=[a for a, _ in ranges], ends=[b for _, b in ranges]
        )
    except ImportError:
        pass
    return found


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "serve":
        range_server(Path(argv[2]), 0)
        return
    if argv and argv[0] == "job-stream":
        endpoint, cells, out, workers, gap = argv[1:]
        with_peak_rss(lambda: job_stream(endpoint, cells, out, int(workers), int(gap)))
        return
    if argv and argv[0] == "job-download":
        endpoint, cells, out, dest, workers = argv[1:]
        with_peak_rss(lambda: job_download(endpoint, cells, out, dest, int(workers)))
        return
    if argv and argv[0] == "job-auto":
        endpoint, cells, out, dest, link = argv[1:]
        with_peak_rss(lambda: job_auto(endpoint, cells, out, dest, link))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="compare", choices=["compare", "engines"])
    parser.add_argument("--size-gb", type=float, default=1.1)
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--mbps", type=float, default=0.0, help="link cap, 0: none")
    parser.add_argument("--conn-mbps", type=float, default=50.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--layouts", nargs="+", choices=["contiguous", "chunked", "gzip"],
        default=["contiguous", "chunked", "gzip"],
    )  # fmt: skip
    parser.add_argument("--work", default=str(WORK))
    parser.add_argument("--runs", type=int, default=3, help="runs of each job (median)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--gap-kb", type=int, default=64)
    parser.add_argument("--ranges", type=int, default=4000)
    parser.add_argument("--range-kb", type=int, default=16)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the matrix for another run")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    engines(args) if args.command == "engines" else compare(args)


if __name__ == "__main__":
    main()
