"""A transfer's progress for the log: bytes done of bytes planned, rate and time left,
at most every few seconds."""

import logging
import threading
import time

from abc_downsample.units import GB

PROGRESS_SECONDS = 5.0


class Progress:
    """Counts bytes as they arrive (from any thread); ``maybe_log`` writes a line when
    ``seconds`` have passed since the last one."""

    def __init__(self, what: str, total: int, log: logging.Logger,
                 seconds: float = PROGRESS_SECONDS, done: int = 0):  # fmt: skip
        self.what = what
        self.total = total
        self.log = log
        self.seconds = seconds
        self.lock = threading.Lock()
        self.fetched = 0
        self.base = done  # bytes already there before this run (a resumed download)
        self.began = self.last = time.monotonic()

    def add(self, n: int) -> None:
        with self.lock:
            self.fetched += n

    def maybe_log(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            self.log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        total = self.total
        have = min(total, self.base + self.fetched)
        rate = self.fetched / max(now - self.began, 1e-6)
        eta = (total - have) / rate if rate > 0 else float("inf")
        pct = 100 * have / total if total else 100
        return (
            f"{self.what}: {have / GB:.2f} of {total / GB:.2f} GB ({pct:.0f}%), "
            f"{rate / 1e6:.1f} MB/s, ETA {duration_text(eta)}"
        )

    def finish(self) -> None:
        elapsed = time.monotonic() - self.began
        self.log.info(
            "%s: fetched %.2f GB in %.1f s (%.1f MB/s)",
            self.what,
            self.fetched / GB,
            elapsed,
            self.fetched / max(elapsed, 1e-6) / 1e6,
        )


def duration_text(seconds: float) -> str:
    """A duration for people: "4m05s", "1h02m", "unknown"."""
    if seconds == float("inf"):
        return "unknown"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
