"""One lock per cached file, shared by every job and project using the cache: an
``fcntl`` lock on ``<file>.lock``, waited for as long as its holder makes progress on disk."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from abc_downsample.errors import AbcError

LOCK_POLL_SECONDS = 0.5
STALL_SECONDS = 900.0  # a lock holder that writes nothing for this long has hung


@contextlib.contextmanager
def file_lock(dest: Path, log: logging.Logger, stall_seconds: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<dest>.lock`` (kept on disk: deleting it would race).

    Waiting is bounded: as long as the holder's part file grows, else ``stall_seconds``.
    """
    lock_path = dest.with_name(dest.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise AbcError(
            f"cannot create {lock_path} ({err.strerror}): the cache directory must be "
            "writable to download into it; fix its permissions or choose another abc.cache_dir"
        ) from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another job is downloading %s: waiting for it", dest)
            _wait_for_lock(fd, dest, stall_seconds)
        except OSError as err:  # e.g. ENOLCK on a file system without locks
            # Unlocked writers still write the same bytes at the same offsets, so the
            # file ends up right; only the work is done twice.
            log.warning("cannot lock %s (%s): downloading without a lock", lock_path, err)
        yield
    finally:
        os.close(fd)


def _wait_for_lock(fd: int, dest: Path, stall_seconds: float) -> None:
    """Poll for the lock while the holder makes progress on disk; give up when it stalls."""
    seen, since = _progress_mark(dest), time.monotonic()
    while True:
        time.sleep(LOCK_POLL_SECONDS)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        mark = _progress_mark(dest)
        if mark != seen:
            seen, since = mark, time.monotonic()
        elif time.monotonic() - since > stall_seconds:
            raise AbcError(
                f"another process has held the lock on {dest} for {stall_seconds:.0f} s "
                "without writing to it: stop that process (or delete its .part file if it "
                "is gone), then rerun"
            )


def _progress_mark(dest: Path) -> tuple:
    """What changes on disk while a download goes on: the part file, its record, the file."""
    marks = []
    for suffix in (".part", ".part.json", ""):
        path = dest.with_name(dest.name + suffix)
        try:
            st = path.stat()
            marks.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            marks.append(None)
    return tuple(marks)
