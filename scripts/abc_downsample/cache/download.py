"""Verified, resumable, locked, parallel downloads into the cache.

`fetch_file` writes ``<dest>.part`` with concurrent ranged reads, keeps a small resume record
``<dest>.part.json`` of the finished parts (so a killed job continues from the bytes on
disk), checks size and the manifest's MD5 and only then renames the file to ``dest``. An
``fcntl`` lock on ``<dest>.lock`` lets any number of jobs or projects share one cache.

The part file is not fsynced: a killed process loses nothing that reached the page cache,
and after a machine crash a part recorded as done but never written fails the MD5 check,
which refetches the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from abc_downsample.cache.layout import read_receipt, write_receipt
from abc_downsample.cache.lock import STALL_SECONDS, file_lock
from abc_downsample.cache.progress import Progress
from abc_downsample.cache.verify import as_checked, check_cached, ensure_cached
from abc_downsample.errors import AbcError, TransientError
from abc_downsample.release.manifest import FileEntry
from abc_downsample.units import GB, MiB, size_text

if TYPE_CHECKING:  # storage imports urllib3: a subset job on a cached file never needs it
    from abc_downsample.cache.store import Store

CHUNK = MiB  # pieces of a part's stream: memory is about max_concurrency * CHUNK
HASH_BLOCK = 8 * MiB
_default_log = logging.getLogger(__name__)


@dataclass
class _Job:
    """One file to fetch and the state of its part file."""

    store: Store
    key: str
    dest: Path
    size: int
    md5: str | None
    part_size: int
    log: logging.Logger
    progress_seconds: float | None = None  # of its `Progress`
    progress_terminal: bool = False
    done: set[int] = field(default_factory=set)

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    @property
    def record(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part.json")

    @property
    def n_parts(self) -> int:
        return max(1, -(-self.size // self.part_size))

    def bounds(self, index: int) -> tuple[int, int]:
        start = index * self.part_size
        return start, min(self.size, start + self.part_size)

    def bytes_done(self) -> int:
        return sum(stop - start for start, stop in map(self.bounds, self.done))


def fetch_file(
    store: Store | Callable[[], Store],
    key: str,
    dest: str | os.PathLike,
    *,
    size: int,
    md5: str | None,
    part_size: int,
    max_concurrency: int,
    retries: int,
    log: logging.Logger = _default_log,
    verify_existing: str = "size",
    progress_seconds: float | None = None,
    stall_seconds: float = STALL_SECONDS,
    progress_terminal: bool = False,
) -> float:
    """Download ``key`` from ``store`` to ``dest``, verified against ``size`` and ``md5``.
    ``store``: the bucket, or a function opening it, called only to download (checking a
    cached copy needs no client, nor credentials). Returns the seconds it waited for the
    bucket (the size request and the parts; 0 if the cached copy was kept).

    Progress goes to ``log`` every ``progress_seconds`` (default: cache.progress's), and to
    the terminal too with ``progress_terminal``.

    ``retries`` counts tries per part after the store's own per-request retries gave up.
    A ``dest`` that exists once the lock is held and passes ``check_cached(verify_existing)``
    is kept as it is (another job fetched it).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    md5 = md5.lower() if md5 else None
    with file_lock(dest, log, stall_seconds):
        if _already_there(dest, size, md5, verify_existing, log):
            return 0.0
        store = store() if callable(store) else store
        began = time.monotonic()
        _check_remote_size(store, key, size)
        job = _Job(store, key, dest, size, md5, max(1, int(part_size)), log, progress_seconds,
                   progress_terminal)  # fmt: skip
        for attempt in (1, 2):
            digest = _download(job, max(1, max_concurrency), max(1, retries))
            if md5 is None or digest == md5:
                break
            _discard(job)
            if attempt == 2:
                raise AbcError(
                    f"'{key}' downloaded twice with MD5 {digest}, the manifest says {md5}: "
                    "the network or the remote copy corrupts data (try again later), or the "
                    f"manifest's MD5 is wrong: if that is known upstream, add '{key}' to "
                    "abc.md5_known_wrong (its size is still checked)"
                )
            log.warning(
                "MD5 of %s is %s, the manifest says %s: downloading again", key, digest, md5
            )
        os.replace(job.part, dest)
        with contextlib.suppress(FileNotFoundError):
            job.record.unlink()
        log.info("downloaded %s (%d bytes, %s)", dest, size, "MD5 ok" if md5 else "size ok")
        return time.monotonic() - began


def _already_there(dest: Path, size: int, md5: str | None, verify: str, log) -> bool:
    if not dest.exists():
        return False
    try:
        check_cached(dest, size, md5, verify)
    except AbcError as err:
        log.warning("replacing the cached copy: %s", err)
        return False
    log.info("%s is already in the cache (%s checked)", dest, verify)
    return True


def _check_remote_size(store: Store, key: str, size: int) -> None:
    remote = store.size(key)
    if remote != size:
        raise AbcError(
            f"'{key}' is {remote} bytes in {store.description}, the manifest says {size}: "
            "the manifest does not match the bucket; check abc.release and abc.bucket"
        )


def use_cached(entry: FileEntry, abc: dict, log: logging.Logger = _default_log,
               waits: list[float] | None = None) -> Path:  # fmt: skip
    """The verified cached file of a manifest entry, per the validated config's ``abc``
    block: trusted from its stamp, else checked, else downloaded (again) from the config's
    bucket (its client made only then); ``waits`` gets the seconds a download waited for
    the bucket. A file listed in ``abc.md5_known_wrong`` is checked by its size alone, with
    a warning every time."""
    settings = abc["download"]
    checked = as_checked(entry, abc)
    if checked is not entry:
        log.warning("%s: its MD5 is not checked (abc.md5_known_wrong lists it); its size is",
                    entry.relative_path)  # fmt: skip

    def fetch(entry: FileEntry, dest: Path, verify_existing: str) -> None:
        from abc_downsample.cache.store import store_from_config

        waited = fetch_file(
            lambda: store_from_config(abc),
            entry.relative_path,
            dest,
            size=entry.size,
            md5=entry.md5,
            part_size=settings["part_size_mb"] * MiB,
            max_concurrency=settings["max_concurrency"],
            retries=settings["retries"],
            log=log,
            verify_existing=verify_existing,
            # a matrix takes minutes: its progress on the terminal too
            progress_terminal=entry.kind == "expression_matrices",
        )
        if waits is not None:
            waits.append(waited)

    return ensure_cached(abc["cache_dir"], checked, abc["verify"], fetch, log)


def cached_input(receipt: str | os.PathLike, abc: dict, log=_default_log) -> Path:
    """The cached file a rule's input receipt stands for, verified (see `use_cached`)."""
    return use_cached(read_receipt(receipt), abc, log)


def download_rule(smk) -> None:
    """Rules download_metadata and download_matrix (their scripts call this with Snakemake's
    object): one file of the manifest into the cache, then the project's receipt."""
    from abc_downsample.release.manifest import Manifest
    from abc_downsample.rule_io import run

    def main():
        # verified (checked, not fetched again, if already there), then the receipt.
        # Transfer settings come from the config's abc block, never from the rule's
        # params: tuning them must never rerun a job.
        entry = Manifest.load(smk.input.manifest).entry_for(smk.params.relative_path)
        use_cached(entry, smk.config["abc"])
        write_receipt(smk.output[0], entry)

    run(main, smk.log[0])


# -- the resume record -------------------------------------------------------------------


def _load_record(job: _Job) -> None:
    """Pick up finished parts from an earlier run, if its record matches this file."""
    try:
        record = json.loads(job.record.read_text())
        same = all(record.get(k) == getattr(job, k) for k in ("key", "size", "md5"))
        if same and job.part.stat().st_size == job.size:
            job.part_size = int(record["part_size"])  # resume with the parts as recorded
            job.done = {int(i) for i in record["done"] if 0 <= int(i) < job.n_parts}
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass
    job.done = set()


def _save_record(job: _Job) -> None:
    record = {
        "key": job.key,
        "size": job.size,
        "md5": job.md5,
        "part_size": job.part_size,
        "done": sorted(job.done),
    }
    tmp = job.record.with_name(job.record.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, job.record)


def _discard(job: _Job) -> None:
    for path in (job.record, job.part):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    job.done = set()


# -- the transfer ----------------------------------------------------------------------


def _download(job: _Job, workers: int, retries: int) -> str | None:
    """Fetch the missing parts into the part file; return its MD5 (None without one)."""
    _load_record(job)
    if job.done:
        job.log.info(
            "resuming %s: %d of %d parts (%.2f GB) already on disk",
            job.key,
            len(job.done),
            job.n_parts,
            job.bytes_done() / GB,
        )
    else:
        _start_part_file(job)
    _check_free_space(job)
    hasher = _OrderedHasher(job) if job.md5 else _NoHasher()
    progress = Progress(f"download {job.key}", job.size, job.log, job.progress_seconds,
                        job.bytes_done(), terminal=job.progress_terminal)  # fmt: skip
    fd = os.open(job.part, os.O_WRONLY)
    try:
        _run_parts(job, fd, workers, retries, hasher, progress)
    except BaseException:
        hasher.stop()
        raise
    finally:
        os.close(fd)
    progress.finish()
    return hasher.hexdigest()


def _start_part_file(job: _Job) -> None:
    with open(job.part, "wb") as handle:
        handle.truncate(job.size)  # sparse: parts land at their offsets in any order
    _save_record(job)


def _check_free_space(job: _Job) -> None:
    needed = job.size - job.bytes_done()
    free = shutil.disk_usage(job.part.parent).free
    if free < needed:
        raise AbcError(
            f"{job.part.parent} has {size_text(free)} free, {job.key} needs {size_text(needed)} "
            "more: free space or set abc.cache_dir elsewhere, then rerun (the download resumes)"
        )


def _run_parts(job, fd, workers, retries, hasher, progress) -> None:
    todo = [i for i in range(job.n_parts) if i not in job.done]
    stop = threading.Event()
    record_lock = threading.Lock()
    hasher.start()

    def written(index: int, upto: int, n: int) -> None:
        progress.add(n)
        hasher.written(index, upto)

    def fetch(index: int) -> None:
        if not _fetch_part(job, fd, index, retries, stop, written):
            return
        with record_lock:
            job.done.add(index)
            _save_record(job)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="abc-download") as pool:
        pending = {pool.submit(fetch, i) for i in todo}
        try:
            while pending:
                finished, pending = wait(pending, progress.seconds, FIRST_COMPLETED)
                for future in finished:
                    future.result()
                progress.maybe_log()
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise


def _fetch_part(job, fd, index, retries, stop, written) -> bool:
    """One part as one streamed request; after the store gives up, tried again from where
    it stopped, up to ``retries`` times.

    Returns False if the transfer was stopped (another part failed) before it finished.
    """
    start, end = job.bounds(index)
    pos = start
    for attempt in range(1, retries + 1):
        try:
            for piece in job.store.iter_range(job.key, pos, end, CHUNK):
                _write_at(job, fd, piece, pos)
                pos += len(piece)
                written(index, pos, len(piece))
                if stop.is_set():
                    return False
            return True
        except TransientError as err:
            if attempt == retries:
                raise AbcError(
                    f"could not download '{job.key}' to {job.dest}: {err} "
                    f"(part {index} failed {retries} times); rerun to resume from the "
                    f"{job.bytes_done() / GB:.2f} GB already on disk"
                ) from err
            job.log.warning("part %d of %s failed (%s): trying again", index, job.key, err)
            time.sleep(min(30.0, 2.0**attempt))
    return False


def _write_at(job: _Job, fd: int, data: bytes, offset: int) -> None:
    try:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
    except OSError as err:
        raise AbcError(
            f"writing {job.part} failed ({err.strerror}): free space or fix the cache "
            "directory, then rerun (the download resumes)"
        ) from err


class _OrderedHasher:
    """MD5 of the part file in file order, following the writers while they download.

    Each part is written front to back, so the hasher can read up to the written end of the
    part at its position; the MD5 is ready moments after the last byte arrives.
    """

    def __init__(self, job: _Job):
        self.job = job
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.ends = {i: job.bounds(i)[1] for i in job.done}  # part -> offset written up to
        self.cond = threading.Condition()
        self.stopped = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="abc-md5", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def written(self, index: int, upto: int) -> None:
        with self.cond:
            self.ends[index] = upto
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def _available(self, pos: int) -> int:
        """Offset up to which the bytes from ``pos`` on are written (``pos`` if none)."""
        index = pos // self.job.part_size
        return self.ends.get(index, pos)

    def _run(self) -> None:
        try:
            fd = os.open(self.job.part, os.O_RDONLY)
            try:
                self._follow(fd)
            finally:
                os.close(fd)
        except BaseException as err:  # reported by hexdigest()
            self.error = err

    def _follow(self, fd: int) -> None:
        pos = 0
        while pos < self.job.size:
            with self.cond:
                self.cond.wait_for(lambda p=pos: self._available(p) > p or self.stopped)
                upto = self._available(pos)
            if upto <= pos:
                return  # stopped
            while pos < upto:
                data = os.pread(fd, min(HASH_BLOCK, upto - pos), pos)
                if not data:
                    raise OSError(f"{self.job.part} is shorter than {upto} bytes")
                self.md5.update(data)
                pos += len(data)

    def hexdigest(self) -> str:
        self.thread.join()
        if self.error:
            raise AbcError(f"reading {self.job.part} back for its MD5 failed: {self.error}")
        return self.md5.hexdigest()


class _NoHasher:
    """Stands in for the hasher when the manifest gives no MD5."""

    def start(self) -> None:
        pass

    def written(self, index: int, upto: int) -> None:
        pass

    def stop(self) -> None:
        pass

    def hexdigest(self) -> None:
        return None


