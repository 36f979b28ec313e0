"""Download speed on loopback: fetch_file vs one get_object stream read in 1 KiB chunks.

Serves one object of --size-mb random bytes on 127.0.0.1 from two servers:
- moto's S3 server. Note that moto reads the whole object (under a per-object lock) for
  every GET, ranged or not, so each request costs about as much as a full read: parallel
  ranged downloads cannot shine against it, and fewer, larger parts win;
- a minimal S3-like range server of ours (HEAD/GET /<bucket>/<key>, Range, from a file),
  whose cost per request is the range served, as on S3; --conn-mbps caps each of its
  connections, like the per-connection throughput of S3 over the internet.
Each download runs in its own process (its peak RSS is its own). Ours verifies size and
MD5; the baseline (the abc_atlas_access way: one stream, 1 KiB reads) verifies nothing.
Files go under benchmarks/work/download/ and are deleted at the end.

    python benchmarks/bench_download.py --size-mb 1024
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

BUCKET = "allen-brain-cell-atlas"
KEY = "expression_matrices/WMB-10Xv3/20230630/WMB-10Xv3-BENCH-raw.h5ad"
MiB = 1024 * 1024
RANGE_READERS = {"ranges-ours": "Store.read_ranges", "ranges-boto3": "boto3 get_object in a pool"}


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto's server did not start")


def run_ours(endpoint: str, dest: Path, size: int, md5: str, part_mb: int, workers: int) -> None:
    from abc_downsample.cache.download import fetch_file
    from abc_downsample.cache.store import open_store

    store = open_store(
        BUCKET, endpoint, retries=5, max_pool=max(workers, 4), read_timeout=120, anonymous=True
    )
    fetch_file(store, KEY, dest, size=size, md5=md5, part_size=part_mb * MiB,
               max_concurrency=workers, retries=5)  # fmt: skip


def run_baseline(endpoint: str, dest: Path) -> None:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    config = Config(signature_version=UNSIGNED, region_name="us-west-2")
    client = boto3.client("s3", endpoint_url=endpoint, config=config)
    body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
    with open(dest, "wb") as handle:
        for chunk in body.iter_chunks(1024):
            handle.write(chunk)


def child(args) -> None:
    peak = PeakRss()
    began = time.perf_counter()
    cpu = os.times()
    if args.child == "ours":
        part_mb = args.part_size_mb[0]
        run_ours(args.endpoint, args.dest, args.size, args.md5, part_mb, args.workers)
    elif args.child == "baseline":
        run_baseline(args.endpoint, args.dest)
    else:
        read_small_ranges(args.child, args.endpoint, args.size, args.ranges, args.workers)
    seconds = time.perf_counter() - began
    cpu_seconds = sum(os.times()[:2]) - sum(cpu[:2])
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak.stop() / MiB}
    print(json.dumps(result))


def small_ranges(size: int, count: int) -> list[tuple[int, int]]:
    """``count`` ranges of 16 KiB at spread-out offsets (what stream mode asks for)."""
    step = max(1, (size - 16384) // count)
    return [(i * step, i * step + 16384) for i in range(count)]


def read_small_ranges(how: str, endpoint: str, size: int, count: int, workers: int) -> None:
    """Many small ranged reads: Store.read_ranges, or boto3 get_object calls in a pool."""
    from concurrent.futures import ThreadPoolExecutor

    ranges = small_ranges(size, count)
    if how == "ranges-ours":
        from abc_downsample.cache.store import open_store

        got = open_store(
            BUCKET, endpoint, retries=5, max_pool=workers, read_timeout=120, anonymous=True
        )
        got = got.read_ranges(KEY, ranges, workers)
    else:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        config = Config(
            signature_version=UNSIGNED, region_name="us-west-2", max_pool_connections=workers
        )
        client = boto3.client("s3", endpoint_url=endpoint, config=config)

        def get(r):
            answer = client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={r[0]}-{r[1] - 1}")
            return answer["Body"].read()

        with ThreadPoolExecutor(workers) as pool:
            got = list(pool.map(get, ranges))
    assert [len(g) for g in got] == [b - a for a, b in ranges]


class PeakRss:
    """Sample this process's RSS (ru_maxrss would include the parent's, kept across exec)."""

    def __init__(self, every: float = 0.05):
        import psutil

        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self.thread.start()

    def _run(self, every: float) -> None:
        while not self.done.wait(every):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return max(self.peak, self.process.memory_info().rss)


def measure(name: str, endpoint: str, dest: Path, size: int, md5: str, part_mb: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--endpoint", endpoint, "--dest", str(dest)]
    cmd += ["--size", str(size), "--md5", md5, "--part-size-mb", str(part_mb)]
    cmd += ["--workers", str(args.workers)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    digest = hashlib.md5()
    with open(dest, "rb") as handle:
        while block := handle.read(8 * MiB):
            digest.update(block)
    result["correct"] = digest.hexdigest() == md5
    dest.unlink()
    return result


def send_file(sock: int, path: Path, start: int, stop: int, mbps: float = 0) -> None:
    """sendfile ``[start, stop)``; with ``mbps``, paced to that rate (one S3 connection)."""
    began, first = time.monotonic(), start
    piece = MiB if mbps else stop - start
    with open(path, "rb") as handle:
        while start < stop:
            sent = os.sendfile(sock, handle.fileno(), start, min(piece, stop - start))
            if sent == 0:
                return
            start += sent
            if mbps:
                ahead = (start - first) / (mbps * 1e6) - (time.monotonic() - began)
                time.sleep(max(0.0, ahead))


class RangeServer:
    """HEAD and ranged GET of one file at /<bucket>/<key>, threaded, served with sendfile."""

    def __init__(self, path: Path, mbps: float = 0):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        size = path.stat().st_size
        expected = f"/{BUCKET}/{KEY}"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.answer(send_body=False)

            def do_GET(self):
                self.answer(send_body=True)

            def answer(self, send_body: bool):
                if self.path.split("?")[0] != expected:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, stop = 0, size
                ranged = self.headers.get("Range", "").removeprefix("bytes=")
                if ranged:
                    first, last = ranged.split("-")
                    start, stop = int(first), min(size, int(last) + 1)
                self.send_response(206 if ranged else 200)
                self.send_header("Content-Length", str(stop - start))
                self.send_header("Accept-Ranges", "bytes")
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
                self.end_headers()
                if send_body:
                    self.wfile.flush()
                    send_file(self.connection.fileno(), path, start, stop, mbps)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_object(path: Path, size: int) -> str:
    """``size`` pseudo-random bytes (64 MiB blocks, each made unique); returns their MD5."""
    block = os.urandom(64 * MiB)
    md5 = hashlib.md5()
    with open(path, "wb") as handle:
        for number, offset in enumerate(range(0, size, len(block)), start=1):
            piece = number.to_bytes(8, "little") + block[8 : min(len(block), size - offset)]
            md5.update(piece)
            handle.write(piece)
    return md5.hexdigest()


def upload_file(endpoint: str, path: Path) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-west-2",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    client.upload_file(str(path), BUCKET, KEY, ExtraArgs={"ACL": "public-read"})


def measure_ranges(how: str, endpoint: str, size: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", how, "--endpoint", endpoint, "--size", str(size)]
    cmd += ["--ranges", str(args.ranges), "--workers", "16"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_server(label, endpoint, size, md5, args) -> dict:
    results = {}
    for mb in args.part_size_mb:
        dest = args.work / "ours.h5ad"
        results[f"{label}: ours, {mb} MiB parts"] = measure(
            "ours", endpoint, dest, size, md5, mb, args
        )
    dest = args.work / "baseline.h5ad"
    results[f"{label}: baseline"] = measure("baseline", endpoint, dest, size, md5, 0, args)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--part-size-mb", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--servers", nargs="+", choices=["moto", "range"], default=["moto", "range"]
    )
    parser.add_argument("--work", type=Path, default=HERE / "work" / "download")
    parser.add_argument(
        "--conn-mbps", type=float, default=0, help="range server: cap each connection (MB/s)"
    )
    parser.add_argument("--ranges", type=int, default=5000, help="small range reads to time")
    parser.add_argument("--child", choices=["ours", "baseline", "ranges-ours", "ranges-boto3"])
    parser.add_argument("--endpoint")
    parser.add_argument("--dest", type=Path)
    parser.add_argument("--size", type=int)
    parser.add_argument("--md5")
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    size = args.size_mb * MiB
    args.work.mkdir(parents=True, exist_ok=True)
    source = args.work / "object.bin"
    results = {}
    try:
        md5 = write_object(source, size)
        if "range" in args.servers:
            server = RangeServer(source, args.conn_mbps)
            try:
                label = f"range server{f' {args.conn_mbps:g} MB/s/conn' if args.conn_mbps else ''}"
                results |= bench_server(label, server.url, size, md5, args)
                if args.ranges:
                    ranges = {h: measure_ranges(h, server.url, size, args) for h in RANGE_READERS}
            finally:
                server.close()
        if "moto" in args.servers:
            moto, endpoint = start_moto()
            try:
                upload_file(endpoint, source)
                source.unlink()
                results |= bench_server("moto", endpoint, size, md5, args)
            finally:
                moto.kill()
                moto.wait()
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    report(results, size, args.workers)
    if "range" in args.servers and args.ranges:
        print(f"{args.ranges} reads of 16 KiB, 16 in flight, from the range server:")
        for how, r in ranges.items():
            print(
                f"  {RANGE_READERS[how]:34s} {r['seconds']:5.1f} s  "
                f"{args.ranges / r['seconds']:6.0f} requests/s  "
                f"client CPU {1000 * r['cpu_seconds'] / args.ranges:.2f} ms/request"
            )


def report(results: dict, size: int, workers: int) -> None:
    print(f"file {size / 1e9:.2f} GB, {workers} parts in flight; ours checks the MD5")
    for name, r in results.items():
        base = results[name.split(":")[0] + ": baseline"]["seconds"]
        rate = size / r["seconds"] / 1e6
        print(
            f"{name:44s} {r['seconds']:6.1f} s {rate:6.1f} MB/s  "
            f"peak RSS {r['peak_rss_mb']:4.0f} MB  x{base / r['seconds']:.1f}  "
            f"correct={r['correct']}"
        )


if __name__ == "__main__":
    main()
