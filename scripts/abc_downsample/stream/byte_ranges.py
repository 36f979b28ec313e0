"""Byte-range arithmetic for stream mode: which bytes to GET, and where they land.

Pure numpy, no I/O. A *range* is a half-open ``[start, stop)`` pair. The caller asks for
many small ranges (one per selected row run of ``data`` or ``indices``, or one per chunk);
:func:`plan_requests` merges neighbours that are less than ``merge_gap`` apart into one
request, splits anything longer than ``max_request`` so big runs still go out in
parallel, and :meth:`FetchPlan.gather` cuts the asked-for ranges back out of the
fetched bytes (one blob per request), in the order they were asked for.
"""

from dataclasses import dataclass

import numpy as np


def as_ranges(starts, stops) -> tuple[np.ndarray, np.ndarray]:
    starts = np.asarray(starts, dtype=np.int64).ravel()
    stops = np.asarray(stops, dtype=np.int64).ravel()
    if starts.shape != stops.shape or np.any(stops < starts):
        raise ValueError("ranges need as many starts as stops, each start <= its stop")
    return starts, stops


@dataclass(frozen=True)
class FetchPlan:
    """Requests to GET: sorted, disjoint ``[start, stop)`` byte ranges of the file."""

    requests: np.ndarray  # (m, 2) int64

    @property
    def nbytes(self) -> int:
        return int((self.requests[:, 1] - self.requests[:, 0]).sum())

    def __len__(self) -> int:
        return len(self.requests)

    def piece(self, blobs: list, start: int, stop: int) -> np.ndarray:
        """Bytes ``[start, stop)`` of the file from the fetched ``blobs`` (one per request).

        A view when one request holds them (the usual case); split pieces of one range are
        adjacent requests, joined only then.
        """
        first = int(np.searchsorted(self.requests[:, 0], start, side="right")) - 1
        offset = start - int(self.requests[first, 0])
        if stop <= self.requests[first, 1]:
            return np.frombuffer(blobs[first], np.uint8, stop - start, offset)
        last = int(np.searchsorted(self.requests[:, 0], stop, side="left"))
        joined = np.frombuffer(b"".join(blobs[first:last]), np.uint8)
        return joined[offset : offset + stop - start]

    def gather(self, blobs: list, starts, stops) -> np.ndarray:
        """The bytes of ranges ``[starts, stops)``, concatenated in the order given.

        ``blobs`` are the fetched bytes of each request; one copy into the result.
        """
        starts, stops = as_ranges(starts, stops)
        out = np.empty(int((stops - starts).sum()), dtype=np.uint8)
        pos = 0
        for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
            if stop > start:
                out[pos : pos + stop - start] = self.piece(blobs, start, stop)
                pos += stop - start
        return out


def plan_requests(starts, stops, merge_gap: int, max_request: int) -> FetchPlan:
    """Merge ranges closer than ``merge_gap`` bytes; cap requests at ``max_request`` bytes.

    Ranges may come in any order and may overlap; empty ones are dropped. A merged request
    never exceeds ``max_request`` unless a single range does, and that one is cut into
    ``max_request`` pieces.
    """
    if max_request <= 0:
        raise ValueError("max_request must be positive")
    starts, stops = as_ranges(starts, stops)
    keep = stops > starts
    order = np.argsort(starts[keep], kind="stable")
    starts, stops = starts[keep][order], stops[keep][order]
    return FetchPlan(_split_long(_merge(starts, stops, merge_gap, max_request), max_request))


def _merge(starts: np.ndarray, stops: np.ndarray, gap: int, cap: int) -> np.ndarray:
    """Sorted ranges merged greedily; a loop because the size cap makes it sequential."""
    merged: list[list[int]] = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        if merged:
            last = merged[-1]
            if start <= last[1] + gap and max(stop, last[1]) - last[0] <= cap:
                last[1] = max(last[1], stop)
                continue
            if start < last[1]:  # overlaps but too big to merge: fetch only the new part
                start = last[1]
                if stop <= start:
                    continue
        merged.append([start, stop])
    return np.array(merged, dtype=np.int64).reshape(-1, 2)


def _split_long(requests: np.ndarray, cap: int) -> np.ndarray:
    sizes = requests[:, 1] - requests[:, 0]
    if not np.any(sizes > cap):
        return requests
    pieces = []
    for start, stop in requests.tolist():
        edges = list(range(start, stop, cap)) + [stop]
        pieces.extend(zip(edges[:-1], edges[1:], strict=True))
    return np.array(pieces, dtype=np.int64).reshape(-1, 2)


def chunk_segments(starts, stops, chunk_len: int) -> tuple[np.ndarray, ...]:
    """Ranges ``[starts, stops)`` of elements cut at chunk borders, ordered by chunk.

    Returns ``(chunk, lo, hi, dest)``: segment i holds elements ``[lo, hi)`` of chunk
    ``chunk[i]`` and goes to ``dest[i]`` in the concatenation of the ranges (in the order
    given), so each chunk can be decoded once and dropped.
    """
    starts, stops = as_ranges(starts, stops)
    lengths = np.maximum(stops - starts, 0)
    dest_start = np.cumsum(lengths) - lengths
    keep = lengths > 0
    starts, stops, dest_start = starts[keep], stops[keep], dest_start[keep]
    first = starts // chunk_len
    counts = (stops - 1) // chunk_len - first + 1
    owner = np.repeat(np.arange(len(starts)), counts)
    # every chunk from first to last of each range, without a Python loop
    chunk = first[owner] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    lo = np.maximum(starts[owner], chunk * chunk_len)
    hi = np.minimum(stops[owner], (chunk + 1) * chunk_len)
    dest = dest_start[owner] + lo - starts[owner]
    order = np.argsort(chunk, kind="stable")
    return chunk[order], lo[order], hi[order], dest[order]


def chunks_touched(starts, stops, chunk_len: int) -> np.ndarray:
    """Sorted ids of the fixed-size chunks that elements ``[starts, stops)`` fall in."""
    return np.unique(chunk_segments(starts, stops, chunk_len)[0])
