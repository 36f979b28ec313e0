"""A transfer's progress for the log: bytes done of bytes planned, rate and time left,
at most every ``PROGRESS_SECONDS``; with ``terminal`` also one line on the terminal (a
matrix's transfer: the long waits a user wants to follow)."""

import logging
import threading
import time

from abc_downsample.rule_io import say
from abc_downsample.units import size_text

PROGRESS_SECONDS = 10.0


class Progress:
    """Counts bytes as they arrive (from any thread); ``maybe_log`` writes a line when
    ``seconds`` (default ``PROGRESS_SECONDS``) have passed since the last one."""

    def __init__(self, what: str, total: int, log: logging.Logger,
                 seconds: float | None = None, done: int = 0,
                 terminal: bool = False):  # fmt: skip
        self.what = what
        self.total = total
        self.log = log
        self.seconds = PROGRESS_SECONDS if seconds is None else seconds
        self.terminal = terminal
        self.lock = threading.Lock()
        self.fetched = 0
        self.base = done  # bytes already there before this run (a resumed download)
        self.began = self.last = time.monotonic()

    def add(self, n: int) -> None:
        with self.lock:
            self.fetched += n

    def maybe_log(self) -> None:
        now = time.monotonic()
        with self.lock:  # from any thread: one line per period
            if now - self.last < self.seconds:
                return
            self.last = now
        line = self.line(now)
        if self.terminal:
            say(line)  # the terminal and the job's log
        else:
            self.log.info("%s", line)

    def line(self, now: float) -> str:
        total = self.total
        have = min(total, self.base + self.fetched)
        rate = self.fetched / max(now - self.began, 1e-6)
        eta = (total - have) / rate if rate > 0 else float("inf")
        pct = 100 * have / total if total else 100
        return (
            f"{self.what}: {size_text(have)} of {size_text(total)} ({pct:.0f}%), "
            f"{rate / 1e6:.1f} MB/s, {duration_text(eta)} left"
        )

    def finish(self) -> None:
        elapsed = time.monotonic() - self.began
        self.log.info(
            "%s: fetched %s in %.1f s (%.1f MB/s)",
            self.what,
            size_text(self.fetched),
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
