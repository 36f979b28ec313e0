"""The run's dataset profile: ``abc.dataset`` names a profile file (``config/datasets`` or a
path), or a dataset of the release whose profile is inferred (``infer``). The main process
infers it once per release and records it in the project; jobs read the record, so cluster
jobs never read the bucket to know the dataset, and reruns need no network."""

from collections.abc import Callable
from pathlib import Path

import yaml

from abc_downsample.atomic import write_if_changed
from abc_downsample.cache.layout import cache_path
from abc_downsample.dataset.infer import ReleaseReader, infer_profile
from abc_downsample.dataset.profile import (
    Dataset,
    dataset_from_dict,
    load_dataset,
    profile_file,
    read_profile,
)
from abc_downsample.errors import AbcError, TransientError
from abc_downsample.release.manifest import FileEntry, Manifest

HEAD_BYTES = 1 << 16  # a header line fits
WHOLE_BYTES = 8 << 20  # the largest table inference reads whole (a term-set table: KBs)


def run_dataset(value: str, manifest: Manifest, abc: dict, record: Path, main: bool,
                say: Callable[[str], None]) -> Dataset:  # fmt: skip
    """The profile ``abc.dataset`` names: a whole profile file as it is; otherwise inferred
    from the release, the keys of a partial profile file over it (e.g. only ``genes``).
    The main process infers it and records it at ``record``; jobs read the record."""
    path = profile_file(value)
    given = read_profile(path) if path is not None else {}
    if path is not None and is_whole(given):
        return dataset_from_dict(given, str(path))
    if not main:
        return _recorded(record)
    name = given.get("name", value)
    try:
        inferred, why = infer_profile(name, release_reader(manifest, abc))
    except TransientError as err:  # offline: the profile inferred last time
        if not record.is_file():
            raise
        say(f"warning: cannot read the release to infer {name}'s profile ({err}); using {record}")
        return _recorded(record)
    if given:
        why.append(f"from {path}: {', '.join(given)} (over the inferred keys)")
    raw = merged(inferred, given)
    text = profile_text(raw, why)
    if write_if_changed(record, text):
        say(f"abc.dataset {value}: profile inferred from release {manifest.version} (saved as "
            f"{record}; copy, edit and pass it as abc.dataset to change it):\n" + text.rstrip())
    else:
        say(f"abc.dataset {value}: the profile inferred from release {manifest.version}, {record}")
    return dataset_from_dict(raw, str(record))


def is_whole(raw: dict) -> bool:
    """A profile that says everything (else the release fills in what it leaves out)."""
    return all(key in raw for key in ("cells", "taxonomy", "genes"))


def merged(base: dict, over: dict) -> dict:
    """``base`` with the keys of ``over`` (nested mappings merged, other values replaced)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merged(base[key], value) if both else value
    return out


def _recorded(record: Path) -> Dataset:
    if not record.is_file():
        raise AbcError(f"{record} is missing: run snakemake from the submit host, which "
                       "infers the profile of abc.dataset")  # fmt: skip
    return load_dataset(record)


def profile_text(raw: dict, why: list[str]) -> str:
    """The profile as YAML, the reasons for each choice as comments above it."""
    notes = "".join(f"# {line}\n" for line in why)
    return notes + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=120)


def release_reader(manifest: Manifest, abc: dict) -> ReleaseReader:
    """Reads listed files from the cache where it holds them, else from the bucket."""
    store = []

    def read(entry: FileEntry, n: int) -> bytes:
        n = min(n, entry.size)
        local = cache_path(abc["cache_dir"], entry.relative_path)
        if local.is_file() and local.stat().st_size == entry.size:
            with open(local, "rb") as handle:
                return handle.read(n)
        if not store:
            from abc_downsample.cache.store import store_from_config

            store.append(store_from_config(abc))
        return store[0].read_range(entry.relative_path, 0, n)

    def whole(entry: FileEntry) -> bytes:
        if entry.size > WHOLE_BYTES:
            raise AbcError(f"{entry.relative_path} is {entry.size} bytes, more than a term-set "
                           "table holds: write a profile for this dataset")  # fmt: skip
        return read(entry, entry.size)

    return ReleaseReader(manifest, lambda entry: read(entry, HEAD_BYTES), whole)
