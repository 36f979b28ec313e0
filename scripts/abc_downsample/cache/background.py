"""MD5 checks of cached files on worker threads while a job does work that needs none of
them: sampling, which reads only the metadata, checks the cached matrices its population
may take, so a first use of a cache another tool filled (no stamps yet) does not read every
matrix in its subset job, one after the other with the work. Each file is checked once,
under its lock, and stamped; a file not reached when the work ends is left to its job
(which checks it as before), one under way is finished first: nothing is read twice.
"""

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from abc_downsample.cache.layout import cache_path
from abc_downsample.cache.lock import STALL_SECONDS, file_lock
from abc_downsample.cache.verify import (
    as_checked,
    check_cached,
    is_stamped,
    is_trusted,
    write_stamp,
)
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import FileEntry, Manifest
from abc_downsample.stream.plan import reads_the_cache
from abc_downsample.units import MB


class BackgroundVerifier:
    """Checks ``entries`` (cached, unstamped) on ``threads`` worker threads, in order."""

    def __init__(self, cache_dir, entries: list[FileEntry], threads: int, log: logging.Logger):
        self.cache_dir, self.log = cache_dir, log
        self.checked: list[tuple[int, float]] = []  # (bytes, CPU seconds of the thread)
        self._lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="md5")
        self.futures = [self.pool.submit(self._check, entry) for entry in entries]

    def _check(self, entry: FileEntry) -> None:
        path = cache_path(self.cache_dir, entry.relative_path)
        try:
            with file_lock(path, self.log, STALL_SECONDS):
                if is_stamped(self.cache_dir, entry) or not path.is_file():
                    return
                start = time.thread_time()  # hashlib and reads release the GIL
                try:
                    check_cached(path, entry.size, entry.md5, "md5")
                    write_stamp(self.cache_dir, entry)
                except AbcError as err:  # its job checks it again and fetches it anew
                    self.log.warning("left to its subset job, which fetches it anew: %s", err)
                with self._lock:
                    self.checked.append((entry.size, time.thread_time() - start))
        except (OSError, AbcError) as err:  # never the job's failure: its subset job checks
            self.log.warning("could not check %s in the background: %s", path, err)

    def finish(self) -> str:
        """Files not started are left to their jobs, those under way are finished; a line
        saying what was checked and how fast (MB/s per core: CPU time of the threads)."""
        for future in self.futures:
            future.cancel()
        self.pool.shutdown(wait=True)
        nbytes = sum(n for n, _ in self.checked)
        cpu = sum(s for _, s in self.checked)
        rate = f", {nbytes / MB / cpu:,.0f} MB/s per core" if cpu > 0 else ""
        left = sum(f.cancelled() for f in self.futures)
        return (f"checked the MD5 of {len(self.checked)} cached matrices ({nbytes / MB:,.0f} MB) "
                f"while sampling{rate}; {left} left to their jobs")  # fmt: skip


def verify_matrices(
    abc: dict, manifest: Manifest, labels, threads: int, log: logging.Logger
) -> BackgroundVerifier | None:
    """Start checking the cached, unstamped matrices of ``labels`` (feature_matrix_label)
    where a job would use the cached copy after a stamp check; None if there is none."""
    if abc["verify"] != "stamp" or not reads_the_cache(abc, in_cache=True):
        return None
    entries = []
    for label in labels:
        try:
            entry = as_checked(manifest.matrix_file(label, abc["variant"]), abc)
        except AbcError:
            continue  # not in the release: its subset job says so
        if not entry.md5:
            continue  # abc.md5_known_wrong: no MD5 to check, its job checks the size
        in_cache = is_trusted(abc["cache_dir"], entry, "size")
        if in_cache and not is_stamped(abc["cache_dir"], entry):
            entries.append(entry)
    return BackgroundVerifier(abc["cache_dir"], entries, threads, log) if entries else None
