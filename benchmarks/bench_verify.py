"""What checking a cached file costs: its MD5 against the manifest once (abc.verify: stamp,
the default), then a stat of the file and its stamp on every later use.

    python benchmarks/bench_verify.py --gb 4 --dir /some/scratch/dir

Writes a file of random-ish bytes of the given size (reused if there), then times
`ensure_cached` three ways: first use (MD5 read, stamp written), later use (stamp matches),
and abc.verify: md5 (read on every use). Prints one table row per case.
"""

import argparse
import logging
import os
import time
from pathlib import Path

from abc_downsample.cache.verify import ensure_cached, file_md5, stamp_path
from abc_downsample.release.manifest import FileEntry

KEY = "expression_matrices/bench/bench-raw.h5ad"
BLOCK = 64 * 1024 * 1024


def make_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(BLOCK)
    with open(path, "wb") as handle:
        for start in range(0, size, BLOCK):
            handle.write(block[: min(BLOCK, size - start)])


def never_fetch(entry, dest, verify_existing):
    """The file is in the cache: a check that passes must not fetch (a wrong one would)."""
    from abc_downsample.cache.download import _already_there

    if not _already_there(dest, entry.size, entry.md5, verify_existing, logging.getLogger()):
        raise SystemExit("the cached file failed its check")


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=4.0)
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/work/verify"))
    args = parser.parse_args()
    cache = args.dir
    path = cache / KEY
    make_file(path, int(args.gb * 1e9))
    md5 = file_md5(path).hexdigest()
    entry = FileEntry("", "", "", None, KEY, path.stat().st_size, md5, "")
    log = logging.getLogger("bench")
    stamp_path(cache, KEY).unlink(missing_ok=True)
    os.posix_fadvise(os.open(path, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)
    cases = [
        ("stamp, first use (MD5 read, stamp written)", "stamp"),
        ("stamp, every later use (a stat)", "stamp"),
        ("md5, every use", "md5"),
    ]
    print(f"| check of a cached {args.gb:g} GB file | seconds |\n|---|---|")
    for name, mode in cases:
        seconds = timed(lambda mode=mode: ensure_cached(cache, entry, mode, never_fetch, log))
        print(f"| {name} | {seconds:.4f} |")


if __name__ == "__main__":
    main()
