"""Checks of files in the cache: a file is checked against the manifest's MD5 once, then
*stamped* (size, mtime, MD5) under ``<cache_dir>/.abc_downsample/verified/``; a stamped file
is trusted after a stat, a changed one is checked again, a corrupt or missing one is
downloaded again (``ensure_cached``). A file ``abc.md5_known_wrong`` lists is checked and
stamped by its size alone (``as_checked``)."""

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from abc_downsample.atomic import atomic_path
from abc_downsample.cache.layout import STATE_DIR, cache_path, write_receipt
from abc_downsample.errors import AbcError
from abc_downsample.release.manifest import FileEntry

_HASH_BLOCK = 8 * 1024 * 1024


def file_md5(path: str | os.PathLike, start: int = 0, md5=None) -> "hashlib._Hash":
    """MD5 of a file from byte ``start`` on, read in blocks (continues ``md5`` if given)."""
    md5 = md5 or hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        handle.seek(start)
        while block := handle.read(_HASH_BLOCK):
            md5.update(block)
    return md5


def check_cached(
    path: str | os.PathLike, size: int | None, md5: str | None, verify: str = "size"
) -> None:
    """Check a cached file against the manifest's ``size`` (and ``md5`` with verify='md5').

    Raises ``AbcError`` with the fix; never downloads or changes the file.
    """
    if verify not in ("size", "md5"):
        raise AbcError(f"abc.verify is '{verify}': use one of size, md5")
    path = Path(path)
    if not path.is_file():
        raise AbcError(f"{path} is missing from the cache: rerun the workflow to download it")
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise AbcError(
            f"{path} is {actual} bytes, the manifest says {size}: delete it to download it again"
        )
    if verify == "md5" and md5:
        digest = file_md5(path).hexdigest()
        if digest != md5.lower():
            raise AbcError(
                f"{path} has MD5 {digest}, the manifest says {md5}: "
                "the file is corrupted; delete it to download it again"
            )


def stamp_path(cache_dir: str | os.PathLike, relative_path: str) -> Path:
    return cache_path(Path(cache_dir) / STATE_DIR / "verified", relative_path + ".json")


def _file_state(path: Path) -> dict | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_stamped(cache_dir, entry: FileEntry) -> bool:
    """True if the file is as it was when its MD5 last matched the manifest's."""
    state = _file_state(cache_path(cache_dir, entry.relative_path))
    if state is None or state["size"] != entry.size:
        return False
    try:
        stamp = json.loads(stamp_path(cache_dir, entry.relative_path).read_text())
    except (OSError, ValueError):
        return False
    return stamp == {**state, "md5": (entry.md5 or "").lower()}


def write_stamp(cache_dir, entry: FileEntry) -> None:
    state = _file_state(cache_path(cache_dir, entry.relative_path))
    if state is None:
        return
    with atomic_path(stamp_path(cache_dir, entry.relative_path)) as tmp:
        tmp.write_text(json.dumps({**state, "md5": (entry.md5 or "").lower()}))


def forget(cache_dir, entry: FileEntry) -> None:
    """Delete a cached file and its stamp (abc.keep_matrices: false)."""
    for path in (
        cache_path(cache_dir, entry.relative_path),
        stamp_path(cache_dir, entry.relative_path),
    ):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def as_checked(entry: FileEntry, abc: dict) -> FileEntry:
    """``entry`` as the cache checks and stamps it, per the validated config's ``abc``
    block: without its MD5 where ``abc.md5_known_wrong`` lists it (its size is checked)."""
    if entry.relative_path in abc["md5_known_wrong"]:
        return dataclasses.replace(entry, md5=None)
    return entry


def is_trusted(cache_dir, entry: FileEntry, verify: str) -> bool:
    """Whether a cached file can be used without reading it (``verify`` as abc.verify)."""
    if verify == "stamp":
        return is_stamped(cache_dir, entry)
    if verify == "size":
        state = _file_state(cache_path(cache_dir, entry.relative_path))
        return state is not None and state["size"] == entry.size
    return False  # md5: read on every use


def receipt_if_trusted(receipt, entry: FileEntry, abc: dict) -> bool:
    """Write the project's ``receipt`` for a cached file that needs no reading (its stamp
    matches, or abc.verify: size and the size does), unless there is one: a stat, where a
    download job would start a process to say the same. Whether the receipt is there."""
    if os.path.exists(receipt):
        return True
    if not is_trusted(abc["cache_dir"], as_checked(entry, abc), abc["verify"]):
        return False
    write_receipt(receipt, entry)
    return True


def ensure_cached(
    cache_dir: str | os.PathLike,
    entry: FileEntry,
    verify: str,
    fetch: Callable[[FileEntry, Path, str], None],
    log: logging.Logger,
) -> Path:
    """The verified cached file of ``entry``, downloaded (again) only if missing or corrupt.

    ``fetch(entry, dest, verify_existing)`` is `download.fetch_file` bound to a store: under
    its file lock it keeps a good existing file and replaces a bad one.
    """
    path = cache_path(cache_dir, entry.relative_path)
    if is_trusted(cache_dir, entry, verify):
        log.info("%s: in the cache, %s", path, "stamp matches" if verify == "stamp" else "size ok")
        return path
    fetch(entry, path, "size" if verify == "size" else "md5")
    if verify != "size":
        write_stamp(cache_dir, entry)
    return path
