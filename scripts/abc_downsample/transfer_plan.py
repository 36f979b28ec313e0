"""`abc.transfer: auto`: stream the selected rows or download the whole file, per matrix.

A transfer of ``requests`` GETs and ``nbytes`` bytes over a link of a given round-trip
``latency``, per-connection and total bandwidth, with ``concurrency`` requests in flight,
takes about ``max((requests * latency + nbytes / per_connection) / concurrency,
nbytes / total)`` plus the client's CPU per request (it is one Python process). Stream mode
pays that for the rows' byte ranges; download mode for the whole file in parts, plus
reading it back from disk. The cheaper one wins. Defaults describe S3 from a workstation.
"""

from dataclasses import dataclass

from .units import MB


@dataclass(frozen=True)
class Link:
    """The link to the bucket; defaults and meanings in config/config.yaml (``abc.link``)."""

    latency_s: float  # time to first byte of a GET
    connection_bps: float  # one connection's throughput
    total_bps: float  # all connections together
    request_cpu_s: float  # client CPU per ranged GET
    disk_bps: float  # reading a downloaded file back (subset + MD5)

    @classmethod
    def from_config(cls, link: dict) -> "Link":
        """From the validated config's ``abc.link`` block."""
        return cls(
            latency_s=float(link["latency_ms"]) / 1e3,
            connection_bps=float(link["connection_mbps"]) * MB,
            total_bps=float(link["total_mbps"]) * MB,
            request_cpu_s=float(link["request_cpu_ms"]) / 1e3,
            disk_bps=float(link["disk_mbps"]) * MB,
        )

    def seconds(self, requests: int, nbytes: int, concurrency: int) -> float:
        concurrency = max(1, concurrency)
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

    def line(self, key: str) -> str:
        return (
            f"auto {key}: stream {self.stream_bytes / MB:,.1f} MB in "
            f"{self.stream_requests:,} requests ~{self.stream_s:.1f} s vs download "
            f"{self.file_bytes / MB:,.1f} MB ~{self.download_s:.1f} s "
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
    spent_bytes: int = 0,
) -> Choice:
    """Stream or download, whichever the link model says is faster (ties: stream)."""
    stream_s = link.seconds(stream_requests, stream_bytes, stream_concurrency)
    parts = max(1, -(-file_bytes // max(1, part_bytes)))
    download_s = link.seconds(parts, file_bytes, download_concurrency)
    download_s += file_bytes / link.disk_bps
    return Choice(
        "stream" if stream_s <= download_s else "download",
        stream_s,
        download_s,
        stream_bytes,
        stream_requests,
        file_bytes,
        spent_bytes,
    )
