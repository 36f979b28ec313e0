"""The local cache in the ``abc_atlas_access`` layout, and checks of files already in it.

A file is stored at ``<cache_dir>/<relative_path>``, so a cache filled by that library is
reused as it is. We never write its ``_downloaded_data.json`` ledger: parallel jobs rewrite
it without a lock and corrupt it; a file's size and MD5 against the manifest are our ledger.
"""

import hashlib
import os
from pathlib import Path, PurePosixPath

from .errors import AbcError

_HASH_BLOCK = 8 * 1024 * 1024
VERIFY_MODES = ("size", "md5")


def cache_path(cache_dir: str | os.PathLike, relative_path: str) -> Path:
    """``<cache_dir>/<relative_path>``; refuses paths that would leave the cache."""
    rel = PurePosixPath(relative_path)
    if not relative_path or rel.is_absolute() or ".." in rel.parts:
        raise AbcError(
            f"manifest path '{relative_path}' is not a relative path inside the cache: "
            "the manifest is damaged; delete it to download it again"
        )
    return Path(cache_dir, *rel.parts)


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
    if verify not in VERIFY_MODES:
        raise AbcError(f"abc.verify is '{verify}': use one of {', '.join(VERIFY_MODES)}")
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
