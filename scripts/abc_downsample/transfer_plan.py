"""`abc.transfer: auto`: stream the selected rows or download the whole file, per matrix.

A transfer of ``requests`` GETs and ``nbytes`` bytes over a link of a given round-trip
``latency``, per-connection and total bandwidth, with ``concurrency`` requests in flight,
takes about ``max((requests * latency + nbytes / per_connection) / concurrency,
nbytes / total)`` plus the client's CPU per request (it is one Python process). Stream mode
pays that for the rows' byte ranges; download mode for the whole file in parts, plus
reading it back from disk. The cheaper one wins. Defaults describe S3 from a workstation.
"""

from dataclasses import dataclass

MB = 1e6


@dataclass(frozen=True)
class Link:
    latency_s: float = 0.03  # time to first byte of a GET to S3
    connection_bps: float = 40 * MB  # one connection's throughput
    total_bps: float = 120 * MB  # the machine's link (~1 Gbit/s)
    request_cpu_s: float = 0.0004  # client CPU per ranged GET (benchmarks: engines)
    disk_bps: float = 500 * MB  # reading a downloaded file back (subset + MD5)

    @classmethod
    def from_config(cls, link: dict | None) -> "Link":
        link = link or {}
        base = cls()
        return cls(
            latency_s=float(link.get("latency_ms", base.latency_s * 1e3)) / 1e3,
            connection_bps=float(link.get("connection_mbps", base.connection_bps / MB)) * MB,
            total_bps=float(link.get("total_mbps", base.total_bps / MB)) * MB,
            request_cpu_s=float(link.get("request_cpu_ms", base.request_cpu_s * 1e3)) / 1e3,
            disk_bps=float(link.get("disk_mbps", base.disk_bps / MB)) * MB,
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
