"""A read-only file object over a store key, for h5py; and a store that counts its reads.

h5py calls :class:`RangeFile` while it holds its global lock, and a worker thread may need
that lock: garbage collection of an h5py object runs on whatever thread allocates. So a
read h5py asks for is fetched on the calling thread; the one parallel fetch made inside
h5py (the children of a chunk-index node, below) runs with the garbage collector off, and
worker threads never touch h5py objects, so none of them can need the lock.
:meth:`RangeFile.prefetch` fetches in parallel too, but only between h5py calls.

Chunk index: a chunked dataset's index is a B-tree whose nodes lie scattered through the
file (each written next to the chunks it indexes). h5py walks it node by node, one round
trip each: thousands for a large file. When it reads an inner node, its children are
fetched at once, in parallel, so the walk costs one round trip per tree level.
"""

import contextlib
import gc
import io
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from abc_downsample.units import STREAM_CACHE_BYTES

METADATA_BLOCK = 64 * 1024  # a B-tree node or object header and more
READ_AHEAD = 64  # most blocks a sequential run of misses fetches at once (4 MiB)
METADATA_CACHE = STREAM_CACHE_BYTES  # obs of the largest file is ~30 MB
PREFETCH_RUN = 16  # blocks in one prefetch request (1 MiB), so a long span goes out in parallel


@dataclass
class FetchStats:
    """Bytes and requests a stream job sent, and the seconds it waited for them (on the
    thread that asked), for the per-job log line."""

    requests: int = 0
    bytes: int = 0
    waited: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, ranges: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self.requests += len(ranges)
            self.bytes += sum(stop - start for start, stop in ranges)


class CountingStore:
    """A store wrapper that counts the ranged reads sent through it."""

    def __init__(self, store, stats: FetchStats | None = None):
        self.store = store
        self.stats = stats or FetchStats()
        self.description = getattr(store, "description", "store")
        self.endpoint = getattr(store, "endpoint", None)

    def size(self, key: str) -> int:
        with self._waiting():
            return self.store.size(key)

    def read_range(self, key: str, start: int, stop: int) -> bytes:
        self.stats.add([(start, stop)])
        with self._waiting():
            return self.store.read_range(key, start, stop)

    def read_ranges(self, key: str, ranges, max_workers: int, each=None) -> list:
        ranges = [(int(a), int(b)) for a, b in ranges]
        self.stats.add(ranges)
        with self._waiting():
            return self.store.read_ranges(key, ranges, max_workers=max_workers, each=each)

    @contextlib.contextmanager
    def _waiting(self):
        started = time.monotonic()
        try:
            yield
        finally:
            self.stats.waited += time.monotonic() - started


class RangeFile(io.RawIOBase):
    """Read-only, seekable file over a store key: aligned blocks, fetched on demand, cached.

    h5py's file-object driver issues many small reads: headers and B-tree nodes scattered
    over the file (a chunk index interleaves with the chunks), and long sequential walks
    (obs strings in global heaps). Small blocks keep the scattered reads cheap; a miss
    right after the previous one doubles the read-ahead (up to ``READ_AHEAD`` blocks), so
    a sequential walk costs a few large requests. Every fetch runs on the calling thread.
    """

    def __init__(
        self,
        store,
        key: str,
        size: int,
        *,
        block: int = METADATA_BLOCK,
        cache_bytes: int = METADATA_CACHE,
        max_workers: int = 16,
    ):
        super().__init__()
        self.store, self.key, self.size = store, key, size
        self.block, self.max_workers = block, max_workers
        self._nodes: dict[int, bytes] = {}  # prefetched B-tree nodes by address
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._max_blocks = max(2 * READ_AHEAD, cache_bytes // block)
        self._n_blocks = -(-size // block)
        self._pos = 0
        self._ahead, self._next_miss = 1, -1

    def __repr__(self) -> str:
        # h5py names a file object's file by its repr: keep the key, as a download would
        return self.key

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        stop = min(self.size, self._pos + len(view))
        if stop <= self._pos:
            return 0
        data = self.read_at(self._pos, stop)
        view[: len(data)] = data
        self._pos = stop
        return len(data)

    def read_at(self, start: int, stop: int) -> bytes:
        node = self._nodes.get(start)
        if node is not None and stop - start <= len(node):
            data = node[: stop - start]
        else:
            first, last = start // self.block, (stop - 1) // self.block
            self._load(range(first, last + 1))
            blocks = b"".join(self._cache[i] for i in range(first, last + 1))
            offset = first * self.block
            data = blocks[start - offset : stop - offset]
        if data[:4] == b"TREE":
            self._prefetch_children(data)
        return data

    def _prefetch_children(self, node: bytes) -> None:
        """Fetch, in parallel, the child nodes of an inner chunk-index node just read."""
        children = chunk_node_children(node, self.size)
        wanted = [a for a in children if a not in self._nodes]
        if len(wanted) < 2:
            return
        ranges = [(a, min(self.size, a + len(node))) for a in wanted]
        enabled = gc.isenabled()
        gc.disable()  # no collection on a worker thread while h5py holds its lock
        try:
            blobs = self.store.read_ranges(self.key, ranges, self.max_workers)
        finally:
            if enabled:
                gc.enable()
        self._nodes.update(zip(wanted, blobs, strict=True))

    def prefetch(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Fetch the blocks under ``ranges`` now, in one parallel batch, into the cache: a
        hint, so that what h5py reads next costs no round trip. Ranges come most wanted
        first; at most half the cache is filled. Call it outside any h5py call: it waits
        on worker threads."""
        runs, spans = self._prefetch_spans(ranges)
        blobs = self.store.read_ranges(self.key, spans, self.max_workers) if spans else []
        for run, data in zip(runs, blobs, strict=True):
            for n, i in enumerate(run):
                self._cache[i] = data[n * self.block : (n + 1) * self.block]
        while len(self._cache) > self._max_blocks:
            self._cache.popitem(last=False)

    def prefetch_cost(self, ranges: Sequence[tuple[int, int]], cached=()) -> tuple[int, int]:
        """Bytes and requests ``prefetch(ranges)`` would fetch now, the blocks under the
        ranges ``cached`` taken as cached too (fetches nothing)."""
        held = {i for start, stop in cached for i in self._blocks(start, stop)}
        _, spans = self._prefetch_spans(ranges, held)
        return sum(stop - start for start, stop in spans), len(spans)

    def _blocks(self, start: int, stop: int) -> range:
        start, stop = max(0, start), min(self.size, stop)
        return range(start // self.block, -(-stop // self.block))

    def _prefetch_spans(self, ranges, held=frozenset()) -> tuple[list[list[int]], list]:
        """The runs of blocks a prefetch of ``ranges`` fetches, and their byte spans."""
        wanted: dict[int, None] = {}  # blocks, in order, once each
        limit = self._max_blocks // 2
        for start, stop in ranges:
            for i in self._blocks(start, stop):
                if i not in self._cache and i not in held and len(wanted) < limit:
                    wanted[i] = None
        runs: list[list[int]] = []
        for i in sorted(wanted):
            if runs and i == runs[-1][-1] + 1 and len(runs[-1]) < PREFETCH_RUN:
                runs[-1].append(i)
            else:
                runs.append([i])
        spans = [(run[0] * self.block, min(self.size, (run[-1] + 1) * self.block)) for run in runs]
        return runs, spans

    def _load(self, ids: range) -> None:
        missing = [i for i in ids if i not in self._cache]
        if missing:
            sequential = missing[0] == self._next_miss
            self._ahead = min(2 * self._ahead, READ_AHEAD) if sequential else 1
            end = min(self._n_blocks, max(missing[-1] + 1, missing[0] + self._ahead))
            ahead = range(missing[-1] + 1, end)
            missing += [i for i in ahead if i not in self._cache]
            self._next_miss = missing[-1] + 1
            self._fetch(missing)
        for i in ids:
            self._cache.move_to_end(i)
        while len(self._cache) > max(self._max_blocks, len(ids)):
            self._cache.popitem(last=False)

    def _fetch(self, blocks: list[int]) -> None:
        """Fetch blocks, each run of adjacent ones in one request, one after the other."""
        runs: list[list[int]] = []
        for i in blocks:
            if runs and i == runs[-1][-1] + 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            start, stop = run[0] * self.block, min(self.size, (run[-1] + 1) * self.block)
            data = self.store.read_range(self.key, start, stop)
            for n, i in enumerate(run):
                self._cache[i] = data[n * self.block : (n + 1) * self.block]


def chunk_node_children(node: bytes, file_size: int) -> list[int]:
    """Addresses of the child nodes of a version-1 B-tree node of raw-data chunks (HDF5
    file format: "TREE", type 1, level, entries, siblings, then key, child, key, ...), or
    [] for a leaf, another node type, or anything that does not parse as one."""
    if len(node) < 24 or node[4] != 1 or node[5] == 0:
        return []
    entries = struct.unpack_from("<H", node, 6)[0]
    for key in (24, 32, 40, 48):  # a chunk key: size, filter mask, (rank + 1) offsets
        if (len(node) - 24 - key) % (key + 8) or 24 + entries * (key + 8) + key > len(node):
            continue
        children = [
            struct.unpack_from("<Q", node, 24 + i * (key + 8) + key)[0] for i in range(entries)
        ]
        if all(0 < a < file_size for a in children):
            return children
    return []
