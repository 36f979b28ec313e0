"""Write outputs atomically: a temporary sibling, renamed into place only on success."""

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

# the temporary name of atomic_path (and of download records): .<name>.tmp-<pid>[suffix]
_TMP_NAME = re.compile(r"\..+\.tmp-(\d+)(\.[^.]+)?")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    A failed or killed writer leaves no file under the final name, so a rerun never
    trusts a half-written output. ``suffix`` keeps the extension for libraries that care.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_if_changed(path: str | os.PathLike, data: str | bytes) -> bool:
    """Write ``data`` atomically unless the file already holds it (its mtime then stays)."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def settings_key(settings: dict) -> str:
    """A short, stable name for a set of settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_done_marker(path: str | os.PathLike, settings: dict) -> None:
    """Write a job's ``<name>.<key>.json`` marker (see ``done_marker`` in common.smk) and
    remove its markers of other settings."""
    path = Path(path)
    name = path.name.rsplit(".", 2)[0]
    for old in path.parent.glob(f"{name}.*.json"):
        if old != path:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n")


def remove_orphans(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files, under ``directory``, of writers that died on this host.

    A writer killed with SIGKILL leaves its ``.<name>.tmp-<pid>`` behind; a file whose pid
    is alive here is kept (it may be being written). Pids are per host: call this only
    where no writer on another host shares ``directory``, e.g. in the main Snakemake process
    before jobs start. Returns the deleted paths.
    """
    removed = []
    for path in sorted(Path(directory).rglob(".*.tmp-*")):
        match = _TMP_NAME.fullmatch(path.name)
        if match and path.is_file() and not _alive(int(match[1])):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
