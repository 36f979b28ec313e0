"""`abc.transfer: auto`: stream the selected rows or download the whole file, per matrix.

The choice is made after planning (the remote file's headers, chunk index, ``indptr`` and
obs labels are read by then), so only what is still to do counts:

- a transfer of ``requests`` GETs and ``nbytes`` bytes over a link of a given round-trip
  ``latency``, per-connection and total bandwidth, with ``concurrency`` requests in flight,
  takes about ``max((requests * latency + nbytes / per_connection) / concurrency,
  nbytes / total)`` plus the CPU each request costs (client, and whatever shares its
  cores);
- compressed chunks are decoded whole, in either mode: stream decodes the fetched chunks
  as they arrive, and subsetting a downloaded file makes h5py decode the same chunks; each
  filter of a chunk's pipeline at its own rate (gzip, lzf, shuffle, fletcher32: MB/s out);
- a downloaded file is read back where the rows are: the bytes stream would have fetched.

Stream pays its transfer and the decoding; download pays the whole file in parts, the
read-back and the decoding. The cheaper one wins. Defaults describe S3 from a workstation.
"""

from dataclasses import dataclass, field

from abc_downsample.units import MB, MiB

FILTERS = ("gzip", "lzf", "shuffle", "fletcher32")  # the filters stream mode decodes


@dataclass(frozen=True)
class Link:
    """The link to the bucket; defaults and meanings in config/config.yaml (``abc.link``)."""

    latency_s: float  # time to first byte of a GET
    connection_bps: float  # one connection's throughput
    total_bps: float  # all connections together
    request_cpu_s: float  # CPU per ranged GET
    disk_bps: float  # reading a downloaded file's rows back
    decode_bps: float  # decoding compressed chunks (bytes out per second), any filter
    filter_bps: dict = field(default_factory=dict)  # filter name -> its own rate

    @classmethod
    def from_config(cls, link: dict) -> "Link":
        """From the validated config's ``abc.link`` block (``decode_mbps``: one rate, or
        one per filter)."""
        decode = link["decode_mbps"]
        rates = decode if isinstance(decode, dict) else {}
        return cls(
            latency_s=float(link["latency_ms"]) / 1e3,
            connection_bps=float(link["connection_mbps"]) * MB,
            total_bps=float(link["total_mbps"]) * MB,
            request_cpu_s=float(link["request_cpu_ms"]) / 1e3,
            disk_bps=float(link["disk_mbps"]) * MB,
            decode_bps=float(min(rates.values()) if rates else decode) * MB,
            filter_bps={name: float(mbps) * MB for name, mbps in rates.items()},
        )

    def decode_seconds(self, by_filter: dict) -> float:
        """Time to decode chunks: ``by_filter`` maps each filter to the bytes it puts out."""
        return sum(n / self.filter_bps.get(name, self.decode_bps) for name, n in by_filter.items())

    def seconds(self, requests: int, nbytes: int, concurrency: int) -> float:
        concurrency = max(1, min(concurrency, requests))  # one request is one connection
        per_connection = (requests * self.latency_s + nbytes / self.connection_bps) / concurrency
        return max(per_connection, nbytes / self.total_bps) + requests * self.request_cpu_s


@dataclass(frozen=True)
class Choice:
    transfer: str  # "stream" or "download"
    stream_s: float
    download_s: float
    stream_bytes: int
    stream_requests: int
    file_bytes: int
    spent_bytes: int  # already fetched to plan (headers, chunk index, indptr, obs)
    decoded_bytes: int = 0  # compressed chunks' bytes once decoded (both modes)
    decode_s: float = 0.0  # in both estimates

    def line(self, key: str) -> str:
        decode = (
            f" (incl. decoding {self.decoded_bytes / MB:,.1f} MB of chunks ~{self.decode_s:.1f} s"
            " in either)"
            if self.decoded_bytes
            else ""
        )
        return (
            f"auto {key}: stream {self.stream_bytes / MB:,.1f} MB in "
            f"{self.stream_requests:,} requests ~{self.stream_s:.1f} s vs download "
            f"{self.file_bytes / MB:,.1f} MB ~{self.download_s:.1f} s{decode} "
            f"(planning read {self.spent_bytes / MB:,.1f} MB): {self.transfer}"
        )


def choose(
    link: Link,
    *,
    stream_requests: int,
    stream_bytes: int,
    stream_concurrency: int,
    file_bytes: int,
    part_bytes: int,
    download_concurrency: int,
    decoded_bytes: int,
    decoded_by_filter: dict,
    spent_bytes: int = 0,
) -> Choice:
    """Stream or download, whichever the model says is faster (ties: stream).

    ``decoded_bytes``: the compressed chunks the rows touch, decoded (0 if unfiltered);
    ``decoded_by_filter``: the bytes each filter of their pipelines puts out, each filter
    timed at its own rate.
    """
    decode_s = link.decode_seconds(decoded_by_filter)
    stream_s = link.seconds(stream_requests, stream_bytes, stream_concurrency) + decode_s
    parts = max(1, -(-file_bytes // max(1, part_bytes)))
    download_s = link.seconds(parts, file_bytes, download_concurrency)
    download_s += stream_bytes / link.disk_bps + decode_s
    return Choice(
        "stream" if stream_s <= download_s else "download",
        stream_s,
        download_s,
        stream_bytes,
        stream_requests,
        file_bytes,
        spent_bytes,
        decoded_bytes,
        decode_s,
    )


def choose_rows(link: Link, rows, file_bytes: int, *, concurrency: int, download: dict,
                spent: int = 0) -> Choice:  # fmt: skip
    """Auto's choice for stream's plan ``rows`` (a ``source.RowsPlan``) of a file of
    ``file_bytes``, with ``concurrency`` stream requests in flight and the ``abc.download``
    settings; ``spent``: the bytes read to plan. The subset job's choice and the plan's."""
    return choose(
        link,
        stream_requests=rows.requests,
        stream_bytes=rows.nbytes,
        decoded_bytes=rows.decoded_bytes,
        decoded_by_filter=rows.decoded_by_filter,
        stream_concurrency=concurrency,
        file_bytes=file_bytes,
        part_bytes=download["part_size_mb"] * MiB,
        download_concurrency=download["max_concurrency"],
        spent_bytes=spent,
    )


def reads_the_cache(abc: dict, in_cache: bool) -> bool:
    """Download mode; auto where the cache already holds the file (no transfer: offline
    reruns and a filled cache need no network) or compute nodes have no internet."""
    transfer = abc["transfer"]
    if transfer != "auto":
        return transfer == "download"
    return in_cache or abc["download_on_host"]
