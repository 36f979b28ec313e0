"""`abc.transfer: auto`: stream the selected rows or download the whole file, per matrix.

The choice is made after planning (the remote file's headers, chunk index, ``indptr`` and
obs labels are read by then), so only what is still to do counts:

- a transfer of ``requests`` GETs and ``nbytes`` bytes over a link of a given round-trip
  ``latency``, per-connection and total bandwidth, with ``concurrency`` requests in flight,
  takes about ``max((requests * latency + nbytes / per_connection) / concurrency,
  nbytes / total)`` plus the CPU each request costs (client, and whatever shares its
  cores);
- compressed chunks are decoded whole, in either mode: stream inflates the fetched chunks
  after the fetch, and subsetting a downloaded file makes h5py inflate the same chunks;
- a downloaded file is read back where the rows are: the bytes stream would have fetched.

Stream pays its transfer and the decoding; download pays the whole file in parts, the
read-back and the decoding. The cheaper one wins. Defaults describe S3 from a workstation.
"""

from dataclasses import dataclass

from abc_downsample.units import MB


@dataclass(frozen=True)
class Link:
    """The link to the bucket; defaults and meanings in config/config.yaml (``abc.link``)."""

    latency_s: float  # time to first byte of a GET
    connection_bps: float  # one connection's throughput
    total_bps: float  # all connections together
    request_cpu_s: float  # CPU per ranged GET
    disk_bps: float  # reading a downloaded file's rows back
    decode_bps: float  # inflating compressed chunks (bytes out per second)

    @classmethod
    def from_config(cls, link: dict) -> "Link":
        """From the validated config's ``abc.link`` block."""
        return cls(
            latency_s=float(link["latency_ms"]) / 1e3,
            connection_bps=float(link["connection_mbps"]) * MB,
            total_bps=float(link["total_mbps"]) * MB,
            request_cpu_s=float(link["request_cpu_ms"]) / 1e3,
            disk_bps=float(link["disk_mbps"]) * MB,
            decode_bps=float(link["decode_mbps"]) * MB,
        )

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
    decoded_bytes: int = 0,
    spent_bytes: int = 0,
) -> Choice:
    """Stream or download, whichever the model says is faster (ties: stream).

    ``decoded_bytes``: the compressed chunks the rows touch, decoded (0 if unfiltered).
    """
    decode_s = decoded_bytes / link.decode_bps
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
